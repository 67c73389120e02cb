import ControlChannel

/// A module's operator toggles on this node, which survive a daemon restart: whether the module
/// starts when the daemon starts (`clusterctl boot`), whether its processes are monitored
/// (`clusterctl errd`), and which checkers are disabled (`clusterctl checker`).
///
/// Kept in the file `settings` of the module's state directory, in the format of
/// ``ModuleSettingsText``, rewritten atomically at every change (on disk first, then here).
/// Not thread-safe: the owner serialises its calls.
final class ModuleSettings {
    let path: String
    private var values: ModuleSettingsText.Values

    /// Loads the settings; a module without a settings file has the defaults (boot on, errd
    /// enabled, every checker enabled).
    /// - Throws: ``StateFileError`` naming the file when it cannot be read or is damaged.
    init(directory: String) throws {
        path = directory + "/settings"
        guard let text = try GenerationStore.contents(of: path) else {
            values = ModuleSettingsText.Values()
            return
        }
        do {
            values = try ModuleSettingsText.parse(text)
        } catch let error as ModuleSettingsTextError {
            throw StateFileError(path: path, problem: "is damaged: \(error)")
        }
    }

    /// The module starts when the daemon starts.
    var boot: Bool { values.boot }

    /// The module's processes are monitored.
    var errdEnabled: Bool { values.errdEnabled }

    /// Whether the checker `name` runs.
    func isCheckerEnabled(_ name: String) -> Bool { !values.disabledCheckers.contains(name) }

    /// Sets and persists `boot`.
    func setBoot(_ on: Bool) throws {
        var changed = values
        changed.boot = on
        try save(changed)
    }

    /// Sets and persists `errdEnabled`.
    func setErrd(_ enabled: Bool) throws {
        var changed = values
        changed.errdEnabled = enabled
        try save(changed)
    }

    /// Enables or disables the checker `name`, persisted.
    func setChecker(_ name: String, enabled: Bool) throws {
        try setCheckers([name], enabled: enabled)
    }

    /// Enables or disables every checker in `names` (`clusterctl checker disable all`), persisted in one write.
    func setCheckers(_ names: [String], enabled: Bool) throws {
        var changed = values
        for name in names {
            guard !name.isEmpty, !name.contains(where: \.isNewline) else {
                throw StateFileError(path: path, problem: "cannot record the checker name '\(name)'")
            }
            if enabled { changed.disabledCheckers.remove(name) } else { changed.disabledCheckers.insert(name) }
        }
        try save(changed)
    }

    private func save(_ changed: ModuleSettingsText.Values) throws {
        guard changed != values else { return }
        try GenerationStore.writeAtomically(ModuleSettingsText.format(changed), to: path)
        values = changed
    }
}
