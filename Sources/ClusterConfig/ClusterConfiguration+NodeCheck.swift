import Glibc

extension ClusterConfiguration {
    /// Checks what only the node called `nodeName` can check: that it is one of the nodes, the key file (see
    /// `PresharedKey`), that the scripts exist and are executable, and that every replicated directory exists
    /// once the node's path prefix is applied. Reads nothing but these paths' status and the key file.
    /// - Throws: `ConfigurationErrors` with every problem found.
    public func checkNode(named nodeName: String) throws {
        let log = IssueLog(file: file)
        guard let node = node(named: nodeName) else {
            let names = nodes.map { "\"\($0.name)\"" }.joined(separator: ", ")
            log.add("", "\"\(nodeName)\" is not a node of this cluster; its nodes are \(names)")
            throw ConfigurationErrors(log.issues)
        }
        if case .failure(let problem) = PresharedKey.read(keyFile) { log.add("", problem.description) }
        for module in modules {
            checkModule(module, on: node, log: log)
        }
        try log.throwIfAny()
    }

    private func checkModule(_ module: Module, on node: Node, log: IssueLog) {
        let context = "module \"\(module.name)\""
        for (index, directory) in module.directories.enumerated() {
            let localPath = node.localPath(directory)
            let shown = localPath == directory ? "\"\(directory)\"" : "\"\(directory)\" (\(localPath) on node \"\(node.name)\")"
            do {
                guard try LocalFile.status(localPath).st_mode & S_IFMT == S_IFDIR else {
                    log.add(context, "directories[\(index)] = \(shown) is not a directory")
                    continue
                }
            } catch where error.errno == ENOTCONN {
                // A mount left by a daemon that died: the daemon recovers it before mounting again.
                continue
            } catch {
                log.add(context, "directories[\(index)] = \(shown): \(error)")
            }
        }
        if let scripts = module.scripts {
            checkExecutable(scripts.start, key: "start", context: context, log: log)
            checkExecutable(scripts.stop, key: "stop", context: context, log: log)
        }
        for checker in module.checkers {
            if case .script(let path) = checker.kind {
                checkExecutable(path, key: "path", context: "\(context): checker \"\(checker.name)\"", log: log)
            }
        }
    }

    private func checkExecutable(_ path: String, key: String, context: String, log: IssueLog) {
        do {
            let status = try LocalFile.status(path)
            if status.st_mode & S_IFMT != S_IFREG {
                log.add(context, "\(key) = \"\(path)\" is not a regular file")
            } else if status.st_mode & 0o111 == 0 {
                log.add(context, "\(key) = \"\(path)\" is not executable: run chmod +x \(path)")
            }
        } catch {
            log.add(context, "\(key) = \"\(path)\": \(error)")
        }
    }
}
