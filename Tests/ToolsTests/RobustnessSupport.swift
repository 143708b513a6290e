import XCTest
import Foundation
import Glibc
@testable import Store

/// A `coffer` process started without waiting for it (for kill -9 and concurrency tests).
/// stdout/stderr go to files in the test's work directory, so a chatty child never blocks.
final class BackgroundCoffer {
    let process: Process
    let stdoutPath: String
    let stderrPath: String
    let args: [String]

    init(process: Process, stdoutPath: String, stderrPath: String, args: [String]) {
        self.process = process
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.args = args
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// SIGKILL, by pid (only this child).
    func killHard() {
        if process.isRunning { _ = Glibc.kill(process.processIdentifier, SIGKILL) }
    }

    /// Waits for the exit and collects the output.
    func wait() -> CofferTestCase.Result {
        process.waitUntilExit()
        let out = (try? Data(contentsOf: URL(fileURLWithPath: stdoutPath))) ?? Data()
        let err = (try? Data(contentsOf: URL(fileURLWithPath: stderrPath))) ?? Data()
        return CofferTestCase.Result(code: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                                     stderr: String(decoding: err, as: UTF8.self), stdoutBytes: Array(out))
    }

    /// True when the process ended by SIGKILL (call after `wait()`).
    var wasKilled: Bool {
        process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
    }
}

extension CofferTestCase {
    /// Starts `coffer args` in the background with the harness environment (`env` overrides; nil removes).
    func startCoffer(_ args: [String], env: [String: String?] = [:]) throws -> BackgroundCoffer {
        var e = baseEnvironment
        for (k, v) in env { e[k] = v }
        let tag = "bg-\(getpid())-\(Int.random(in: 0..<1_000_000_000))"
        let outPath = work.appending("\(tag).out").description
        let errPath = work.appending("\(tag).err").description
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CofferTestCase.binary)
        p.arguments = args
        p.environment = e
        p.standardInput = Foundation.FileHandle.nullDevice
        p.standardOutput = Foundation.FileHandle(forWritingAtPath: outPath)
        p.standardError = Foundation.FileHandle(forWritingAtPath: errPath)
        try p.run()
        let bg = BackgroundCoffer(process: p, stdoutPath: outPath, stderrPath: errPath, args: args)
        BackgroundRegistry.shared.add(bg)
        return bg
    }

    /// Polls `condition` (every 20 ms) until it holds, the deadline passes, or `process` (if given) exits.
    /// Returns whether the condition held. Not a sleep for synchronisation: it waits for an observable state.
    func poll(timeout: Double = 60, whileRunning process: BackgroundCoffer? = nil, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Monotonic.now() + timeout
        while true {
            if try condition() { return true }
            if let p = process, !p.isRunning { return try condition() }
            if Monotonic.now() > deadline { return false }
            usleep(20_000)
        }
    }

    /// Writes `size` deterministic pseudo-random bytes (SplitMix64, 8 bytes per step, 1 MiB at a time).
    func writeRandomFile(_ path: RawPath, size: Int, seed: UInt64) throws {
        if (try? Posix.lstat(path)) != nil { try Posix.remove(path) }
        let fh = try Store.FileHandle.create(path, permissions: 0o644)
        defer { fh.close() }
        let block = 1 << 20
        var words = [UInt64](repeating: 0, count: block / 8)
        var s = seed &* 0xD1B54A32D192ED03 &+ 0x9E3779B97F4A7C15
        var left = size
        while left > 0 {
            words.withUnsafeMutableBufferPointer { p in
                var st = s
                for i in 0..<p.count {
                    st = st &+ 0x9E3779B97F4A7C15
                    var z = st
                    z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
                    z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
                    p[i] = z ^ (z >> 31)
                }
                s = st
            }
            let n = min(left, block)
            try words.withUnsafeBytes { try fh.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
    }

    /// Entry names of a directory (empty if it does not exist), sorted.
    func entryNames(_ dir: RawPath) -> [String] {
        ((try? Posix.readDirectory(dir)) ?? []).map { RawPath.escape($0) }.sorted()
    }

    /// Published pack files under `repository`/data/??/.
    func packFiles(in repository: RawPath? = nil) -> [RawPath] {
        let data = (repository ?? repo).appending("data")
        var out: [RawPath] = []
        for sub in (try? Posix.readDirectory(data)) ?? [] where sub.count == 2 {
            for f in (try? Posix.readDirectory(data.appending(sub))) ?? [] { out.append(data.appending(sub).appending(f)) }
        }
        return out.sorted()
    }

    /// Damages the byte at `offset` in place (XOR 0x5a), as bad media would.
    func flipByte(_ path: RawPath, at offset: Int64) throws {
        let fd = path.withCString { open($0, O_RDWR) }
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var b: UInt8 = 0
        XCTAssertEqual(pread(fd, &b, 1, off_t(offset)), 1)
        b ^= 0x5a
        XCTAssertEqual(pwrite(fd, &b, 1, off_t(offset)), 1)
    }

    /// Lock files with their content.
    func lockFiles(in repository: RawPath? = nil) -> [(name: [UInt8], bytes: [UInt8])] {
        let dir = (repository ?? repo).appending("locks")
        return ((try? Posix.readDirectory(dir)) ?? []).map { n in (n, (try? TreeCompare.readAll(dir.appending(n))) ?? []) }
    }

    /// stderr split into non-empty lines.
    func stderrLines(_ r: Result) -> [String] {
        r.stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// Where `restore --target target` puts the snapshot path `source`.
    func restored(_ source: RawPath, under target: RawPath) -> RawPath {
        RawPath(bytes: target.bytes + source.normalizedAbsolute().bytes)
    }

    /// Snapshot objects from `snapshots --json` (oldest first).
    func snapshotList(env: [String: String?] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let r = try ok(["snapshots", "--json"], env: env, file: file, line: line)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
    }

    /// The `summary` object of `backup --json` output.
    func backupSummary(_ r: Result) -> [String: Any] {
        let o = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        return o?["summary"] as? [String: Any] ?? [:]
    }

    /// Mounts a tmpfs of `size` (e.g. "6m") on `dir` (created); XCTSkip if mounting is not possible.
    /// Unmounted in tearDown of RobustnessTests (and by the caller's defer).
    func mountTmpfs(_ dir: RawPath, size: String) throws {
        try mkdirs(dir)
        let r = try run("/bin/sh", ["-c", "mount -t tmpfs -o size=\(size) tmpfs \(shellQuote(dir))"])
        guard r.code == 0 else { throw XCTSkip("cannot mount a tmpfs (\(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)))") }
        BackgroundRegistry.shared.addMount(dir.description)
    }

    func unmount(_ dir: RawPath) {
        _ = try? run("/bin/sh", ["-c", "umount \(shellQuote(dir)) 2>/dev/null || umount -l \(shellQuote(dir)) 2>/dev/null"])
        BackgroundRegistry.shared.removeMount(dir.description)
    }

    /// Runs coffer in a new session (no controlling terminal) under a hard time limit; exit 124 = it hung.
    func cofferWithoutTerminal(_ args: [String], env: [String: String?] = [:], seconds: Int = 30) throws -> Result {
        var e = baseEnvironment
        for (k, v) in env { e[k] = v }
        return try run("/usr/bin/timeout", ["-k", "5", String(seconds), "/usr/bin/setsid", "-w", CofferTestCase.binary] + args,
                       environment: e)
    }
}

/// Children and mounts still around when a test ends (after a failure), cleaned up in tearDown.
final class BackgroundRegistry: @unchecked Sendable {
    static let shared = BackgroundRegistry()
    private let lock = NSLock()
    private var processes: [BackgroundCoffer] = []
    private var mounts: [String] = []

    func add(_ p: BackgroundCoffer) { lock.lock(); processes.append(p); lock.unlock() }
    func addMount(_ m: String) { lock.lock(); mounts.append(m); lock.unlock() }
    func removeMount(_ m: String) { lock.lock(); mounts.removeAll { $0 == m }; lock.unlock() }

    /// Kills (by pid) and reaps our own children that are still running; returns leftover mounts.
    func cleanUp() -> [String] {
        lock.lock()
        let ps = processes, ms = mounts
        processes.removeAll()
        mounts.removeAll()
        lock.unlock()
        for p in ps where p.isRunning {
            p.killHard()
            p.process.waitUntilExit()
        }
        return ms
    }
}
