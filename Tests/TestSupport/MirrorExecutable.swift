import Foundation

/// The built `mirror` executable, beside the test bundle (`swift build --build-tests` builds it).
public let mirrorExecutable: String = builtExecutable("mirror")

/// The built `clusterctl` executable, beside the test bundle.
public let clusterctlExecutable: String = builtExecutable("clusterctl")

/// The path of the package's executable `name` in the build directory of the running tests.
func builtExecutable(_ name: String) -> String {
    let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for candidate in [bundleDirectory, bundleDirectory.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    let selfExe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    let besideExe = URL(fileURLWithPath: selfExe).deletingLastPathComponent().appendingPathComponent(name).path
    if FileManager.default.isExecutableFile(atPath: besideExe) { return besideExe }
    fatalError("the \(name) executable was not found beside the tests (\(bundleDirectory.path)); run 'swift build' first")
}
