import ClusterConfig
import Glibc

/// SafeKit's errd for one module: whether each watched application process is alive. Armed once
/// the start script succeeded, disarmed before the stop script runs.
struct ProcessWatch {
    let monitors: [ProcessMonitor]
    /// The node's path prefix (pid files lie in replicated directories).
    let pathPrefix: (String) -> String

    /// The name of the first watched process that is not running, nil if all are.
    func deadProcess() -> String? {
        monitors.first { !isAlive($0.target) }?.name
    }

    private func isAlive(_ target: ProcessMonitor.Target) -> Bool {
        switch target {
        case .pidFile(let file):
            guard let text = (try? GenerationStore.contents(of: pathPrefix(file))) ?? nil,
                  let line = text.split(separator: "\n").first,
                  let pid = pid_t(line.trimmingPrefix(while: { $0 == " " })) , pid > 0 else { return false }
            return kill(pid, 0) == 0 || errno == EPERM
        case .processName(let name):
            guard let directory = opendir("/proc") else { return true }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let pidText = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard pidText.allSatisfy(\.isNumber),
                      let comm = (try? GenerationStore.contents(of: "/proc/\(pidText)/comm")) ?? nil else { continue }
                if comm.trimmingCharacters(in: "\n") == name { return true }
            }
            return false
        }
    }
}
