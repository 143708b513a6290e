import XCTest
import Foundation
import Glibc
@testable import Store

/// Runs the real `coffer` binary against a throw-away repository in a temp directory.
/// Never touches a user repository: the environment is rebuilt from scratch for each run.
class CofferTestCase: XCTestCase {
    var work: RawPath!
    var repo: RawPath { work.appending("repo") }
    var cache: RawPath { work.appending("cache") }
    var passwordFile: RawPath { work.appending("pass") }

    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["COFFER_BIN"] { return b }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<3 {
            let c = dir.appendingPathComponent("coffer").path
            if FileManager.default.isExecutableFile(atPath: c) { return c }
            dir = dir.deletingLastPathComponent()
        }
        // swift test from the package root
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root = root.deletingLastPathComponent() }
        return root.appendingPathComponent(".build/debug/coffer").path
    }()

    override func setUpWithError() throws {
        let template = "/tmp/coffer-test-XXXXXX"
        var buf = Array(template.utf8CString)
        guard mkdtemp(&buf) != nil else { throw XCTSkip("mkdtemp failed") }
        work = RawPath(String(cString: buf))
        try writeFile(passwordFile, "correct horse battery staple\n", mode: 0o600)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: CofferTestCase.binary), "coffer binary not found at \(CofferTestCase.binary)")
    }

    override func tearDownWithError() throws {
        if let w = work { _ = try? run("/bin/rm", ["-rf", w.description]) }
    }

    struct Result {
        let code: Int32
        let stdout: String
        let stderr: String
        var stdoutBytes: [UInt8]
    }

    var baseEnvironment: [String: String] {
        var env: [String: String] = [:]
        for k in ["PATH", "HOME", "LANG", "TMPDIR"] { env[k] = ProcessInfo.processInfo.environment[k] }
        env["COFFER_REPO"] = repo.description
        env["COFFER_PASSWORD_FILE"] = passwordFile.description
        env["COFFER_CACHE_DIR"] = cache.description
        return env
    }

    /// Runs coffer with `args`; `env` entries override (a nil value removes the variable).
    @discardableResult
    func coffer(_ args: [String], env: [String: String?] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        var e = baseEnvironment
        for (k, v) in env { e[k] = v }
        return try run(CofferTestCase.binary, args, environment: e)
    }

    /// Runs coffer and fails the test unless it exits 0.
    @discardableResult
    func ok(_ args: [String], env: [String: String?] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let r = try coffer(args, env: env)
        XCTAssertEqual(r.code, 0, "coffer \(args.joined(separator: " ")) failed: \(r.stderr)", file: file, line: line)
        return r
    }

    func initRepository() throws {
        try ok(["init", "--kdf-memory", "1MiB"])
    }

    func run(_ exe: String, _ args: [String], environment: [String: String]? = nil, stdin: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
        try? input.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let g = DispatchGroup()
        g.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        g.wait()
        let errData = errBox.data
        p.waitUntilExit()
        return Result(code: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self), stdoutBytes: Array(outData))
    }

    func sh(_ script: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try run("/bin/bash", ["-c", script])
        XCTAssertEqual(r.code, 0, "shell failed: \(script)\n\(r.stderr)", file: file, line: line)
    }

    func writeFile(_ path: RawPath, _ text: String, mode: UInt32 = 0o644) throws {
        try writeBytes(path, Array(text.utf8), mode: mode)
    }

    func writeBytes(_ path: RawPath, _ bytes: [UInt8], mode: UInt32 = 0o644) throws {
        if (try? Posix.lstat(path)) != nil { try Posix.remove(path) }
        let fh = try Store.FileHandle.create(path, permissions: mode)
        try bytes.withUnsafeBytes { try fh.write($0) }
        fh.close()
        try Posix.setPermissions(path, mode)
    }

    func mkdirs(_ path: RawPath) throws {
        var p = RawPath("/")
        for c in path.components {
            p = p.appending(c)
            try Posix.makeDirectory(p, permissions: 0o755)
        }
    }

    /// Deterministic pseudo-random bytes.
    func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var s = seed &+ 0x9E3779B97F4A7C15
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            s = s &+ 0x9E3779B97F4A7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            z ^= z >> 31
            for b in 0..<8 where i < count { out[i] = UInt8(truncatingIfNeeded: z >> (8 * UInt64(b))); i += 1 }
        }
        return out
    }

    /// Snapshot ids from `snapshots --json`, oldest first.
    func snapshotIDs() throws -> [String] {
        let r = try ok(["snapshots", "--json"])
        let arr = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
        return arr.compactMap { $0["id"] as? String }
    }
}
