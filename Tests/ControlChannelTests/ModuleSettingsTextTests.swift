import ControlChannel
import XCTest

final class ModuleSettingsTextTests: XCTestCase {
    typealias Values = ModuleSettingsText.Values

    func testDefaultsAndRoundTrip() throws {
        XCTAssertEqual(Values(), Values(boot: true, errdEnabled: true, disabledCheckers: []))
        for values in [
            Values(),
            Values(boot: false, errdEnabled: false, disabledCheckers: ["pg-port", "disk space", "a=b"]),
            Values(boot: true, errdEnabled: false, disabledCheckers: ["x"]),
        ] {
            XCTAssertEqual(try ModuleSettingsText.parse(ModuleSettingsText.format(values)), values)
        }
    }

    func testExactText() {
        XCTAssertEqual(ModuleSettingsText.format(Values(boot: false, errdEnabled: true, disabledCheckers: ["pg-port", "disk"])), """
            # mirror module settings: written by the daemon, changed with clusterctl boot/errd/checker
            boot=off
            errd=enabled
            disabled_checker=disk
            disabled_checker=pg-port

            """)
    }

    func testCommentsBlankLinesAndSpacesAreAccepted() throws {
        let values = try ModuleSettingsText.parse("\n# hand edited\n  boot = off \nerrd=disabled\r\ndisabled_checker= pg-port\n\n")
        XCTAssertEqual(values, Values(boot: false, errdEnabled: false, disabledCheckers: ["pg-port"]))
    }

    func testDamagedTextNamesTheLine() {
        func problem(_ text: String) -> String {
            do {
                return "parsed: \(try ModuleSettingsText.parse(text))"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(problem(""), "no boot= line")
        XCTAssertEqual(problem("boot=on\n"), "no errd= line")
        XCTAssertEqual(problem("boot=on\nerrd=enabled\nbot=off\n"), "line 3: unknown key 'bot'")
        XCTAssertEqual(problem("boot=yes\nerrd=enabled\n"), "line 1: boot is 'yes', expected on or off")
        XCTAssertEqual(problem("boot=on\nerrd=on\n"), "line 2: errd is 'on', expected enabled or disabled")
        XCTAssertEqual(problem("boot=on\nboot=off\nerrd=enabled\n"), "line 2: boot given twice")
        XCTAssertEqual(problem("boot=on\nerrd=enabled\ndisabled_checker=\n"), "line 3: disabled_checker without a name")
        XCTAssertEqual(problem("boot=on\n\u{0}\u{1}garbage\n"), "line 2: not key=value")
    }
}
