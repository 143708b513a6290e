import XCTest
import Foundation
import Glibc
@testable import Store

/// Error paths of the CLI: every failure is one line on stderr with a documented exit code,
/// and nothing is written where nothing should be.
final class ErrorPathTests: CofferTestCase {
    // MARK: - 5. Passphrase, location, init, missing paths

    func testWrongPassphraseExits12WithOneLine() throws {
        try initRepository()
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("f"), "data\n")
        let wrong = work.appending("wrong-pass")
        try writeFile(wrong, "not the passphrase\n", mode: 0o600)
        for args in [["snapshots"], ["backup", src.description], ["check"], ["restore", "latest", "--target", work.appending("r").description]] {
            let r = try coffer(args, env: ["COFFER_PASSWORD_FILE": wrong.description])
            XCTAssertEqual(r.code, 12, "\(args[0]) with a wrong passphrase: \(r.stderr)")
            XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("wrong passphrase"), r.stderr)
            XCTAssertFalse(r.stderr.contains("not the passphrase"), "the passphrase is never echoed")
        }
        let viaEnv = try coffer(["snapshots"], env: ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": "nope"])
        XCTAssertEqual(viaEnv.code, 12, viaEnv.stderr)
        XCTAssertEqual(entryNames(repo.appending("snapshots")), [], "nothing was written")
        XCTAssertEqual(entryNames(repo.appending("locks")), [])
        XCTAssertEqual(packFiles(), [])
    }

    func testNoRepositoryExits10NamingThePath() throws {
        let nowhere = work.appending("no-repo-here")
        for args in [["snapshots"], ["check"], ["backup", work.description], ["ls", "latest"]] {
            let r = try coffer(args, env: ["COFFER_REPO": nowhere.description])
            XCTAssertEqual(r.code, 10, "\(args[0]) without a repository: \(r.stderr)")
            XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(nowhere.description), "the message names the location: \(r.stderr)")
        }
        XCTAssertNil(try? Posix.lstat(nowhere), "nothing is created at a location that holds no repository")
        // An empty directory is not a repository either.
        try mkdirs(nowhere)
        let r = try coffer(["snapshots"], env: ["COFFER_REPO": nowhere.description])
        XCTAssertEqual(r.code, 10, r.stderr)
        XCTAssertEqual(entryNames(nowhere), [])
    }

    func testInitRefusesAnExistingRepositoryAndANonEmptyDirectory() throws {
        try initRepository()
        let config = try TreeCompare.readAll(repo.appending("config"))
        let keys = entryNames(repo.appending("keys"))
        let again = try coffer(["init", "--kdf-memory", "1MiB"])
        XCTAssertNotEqual(again.code, 0, "init over an existing repository must fail")
        XCTAssertEqual(stderrLines(again).count, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains(repo.description), again.stderr)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        XCTAssertEqual(try TreeCompare.readAll(repo.appending("config")), config, "the config is untouched")
        XCTAssertEqual(entryNames(repo.appending("keys")), keys, "no key slot added")
        try ok(["snapshots"])

        let busy = work.appending("busy")
        try mkdirs(busy)
        try writeFile(busy.appending("precious.txt"), "keep me\n")
        let r = try coffer(["init", "--kdf-memory", "1MiB"], env: ["COFFER_REPO": busy.description])
        XCTAssertNotEqual(r.code, 0, "init in a non-empty directory must fail")
        XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains(busy.description), r.stderr)
        XCTAssertTrue(r.stderr.contains("not empty"), r.stderr)
        XCTAssertEqual(entryNames(busy), ["precious.txt"], "nothing was added to the directory")
    }

    func testMissingPathAmongSeveralGivesAPartialSnapshot() throws {
        let src = work.appending("src")
        try mkdirs(src.appending("there"))
        try writeFile(src.appending("there").appending("f"), "present\n")
        try writeFile(src.appending("also"), "also present\n")
        let missing = work.appending("gone-away")
        try initRepository()
        let r = try coffer(["backup", src.appending("there").description, missing.description, src.appending("also").description])
        XCTAssertEqual(r.code, 3, "a missing path among several: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains(missing.description), "the error names the missing path: \(r.stderr)")
        let list = try snapshotList()
        XCTAssertEqual(list.count, 1)
        XCTAssertEqual(list.first?["partial"] as? Bool, true)
        let errors = (list.first?["summary"] as? [String: Any])?["errors"] as? [String] ?? []
        XCTAssertTrue(errors.contains { $0.contains(missing.description) }, "summary.errors names the path: \(errors)")
        let table = try ok(["snapshots"]).stdout
        XCTAssertTrue(table.contains("partial"), table)

        // The paths that exist are in the snapshot.
        let target = work.appending("r")
        try ok(["restore", "latest", "--target", target.description])
        XCTAssertEqual(try TreeCompare.readAll(restored(src.appending("also"), under: target)), Array("also present\n".utf8))
        XCTAssertEqual(TreeCompare.differences(src.appending("there"), restored(src.appending("there"), under: target)), [])
    }

    func testAllPathsMissingWritesNoSnapshot() throws {
        try initRepository()
        let m1 = work.appending("missing-one"), m2 = work.appending("missing-two")
        let r = try coffer(["backup", m1.description, m2.description])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertNotEqual(r.code, 3, "no snapshot, so not 'partial'")
        XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains(m1.description) || r.stderr.contains(m2.description), r.stderr)
        XCTAssertEqual(entryNames(repo.appending("snapshots")), [])
        XCTAssertEqual(entryNames(repo.appending("index")), [])
        XCTAssertEqual(packFiles(), [])
        XCTAssertEqual(entryNames(repo.appending("locks")), [])
        XCTAssertEqual(try snapshotIDs().count, 0)
    }

    // MARK: - 7. Help and version

    func testHelpForEveryCommand() throws {
        let commands: [[String]] = [[], ["init"], ["backup"], ["snapshots"], ["ls"], ["restore"], ["check"], ["catalog"],
                                    ["catalog", "rebuild"], ["unlock"]]
        for c in commands {
            // No repository or passphrase needed for help.
            let r = try coffer(c + ["--help"], env: ["COFFER_REPO": nil, "COFFER_PASSWORD_FILE": nil])
            let name = (["coffer"] + c).joined(separator: " ")
            XCTAssertEqual(r.code, 0, "\(name) --help: \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE"), "\(name) --help prints usage: \(r.stdout)")
            XCTAssertTrue(r.stdout.contains(name), "\(name) --help names the command: \(r.stdout)")
        }
    }

    func testVersion() throws {
        let r = try coffer(["--version"], env: ["COFFER_REPO": nil])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertNotNil(r.stdout.range(of: #"^[0-9]+\.[0-9]+\.[0-9]+"#, options: .regularExpression), r.stdout)
    }

    // MARK: - 8. No passphrase source and no terminal

    func testNoPassphraseAndNoTerminalFailsAtOnce() throws {
        try initRepository()
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("f"), "x\n")
        let noPass: [String: String?] = ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": nil, "COFFER_NEW_PASSWORD": nil]
        for args in [["snapshots"], ["backup", src.description], ["check"]] {
            let r = try cofferWithoutTerminal(args, env: noPass)
            XCTAssertNotEqual(r.code, 124, "\(args[0]) hung waiting for a passphrase")
            XCTAssertNotEqual(r.code, 0)
            XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("passphrase"), r.stderr)
            XCTAssertTrue(r.stderr.contains("COFFER_PASSWORD"), "the message says how to provide one: \(r.stderr)")
        }
        XCTAssertEqual(entryNames(repo.appending("snapshots")), [])
        XCTAssertEqual(entryNames(repo.appending("locks")), [])

        let fresh = work.appending("fresh")
        var env = noPass
        env["COFFER_REPO"] = fresh.description
        let i = try cofferWithoutTerminal(["init", "--kdf-memory", "1MiB"], env: env)
        XCTAssertNotEqual(i.code, 124, "init hung waiting for a passphrase")
        XCTAssertNotEqual(i.code, 0)
        XCTAssertEqual(stderrLines(i).count, 1, i.stderr)
        XCTAssertTrue(i.stderr.contains("passphrase"), i.stderr)
        XCTAssertNil(try? Posix.lstat(fresh), "init without a passphrase creates nothing")
    }
}
