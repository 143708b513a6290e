import XCTest
import Foundation
import Glibc
@testable import Store
import Crypto

/// End-to-end robustness: kill -9, full disks, concurrent writers, damaged packs, a lost catalog,
/// confidentiality of the stored bytes and the append-only property — all through the real binary.
final class RobustnessTests: CofferTestCase {
    struct Abort: Error { let message: String }

    override func tearDownWithError() throws {
        for m in BackgroundRegistry.shared.cleanUp() {
            _ = try? run("/bin/sh", ["-c", "umount '\(m)' 2>/dev/null || umount -l '\(m)' 2>/dev/null"])
        }
        try super.tearDownWithError()
    }

    // MARK: - 1. kill -9 during backup

    /// Kills a backup of 128 MiB (COFFER_ROBUST_KILL_MIB overrides; a debug build backs up ~5 MiB/s)
    /// right after it starts staging its first pack, and again after it has published one. Each time the
    /// repository must check clean (also with --read-data) and hold no snapshot, and the dead process's
    /// lock must not block the next command. Finally a complete backup succeeds and restores exactly.
    func testKillDuringBackupLeavesACheckableRepositoryAndTheNextBackupSucceeds() throws {
        let mib = Int(ProcessInfo.processInfo.environment["COFFER_ROBUST_KILL_MIB"] ?? "") ?? 128
        let src = work.appending("src")
        try mkdirs(src.appending("small"))
        let files = 5
        for i in 0..<files {
            try writeRandomFile(src.appending("part-\(i).bin"), size: (mib << 20) / files + i * 4099, seed: UInt64(1000 + i))
        }
        for i in 0..<20 { try writeFile(src.appending("small").appending("note-\(i).txt"), "note \(i)\n") }
        try initRepository()

        // A pack file staged (not just the lock's own temporary file, which also passes through tmp/).
        try killBackup(of: src, moment: "right after start (a pack is being staged in repo/tmp)") {
            self.entryNames(self.repo.appending("tmp")).contains { $0.hasSuffix(".pack") } && self.lockFiles().count == 1
        }
        try killBackup(of: src, moment: "mid-way (a pack has been published under repo/data)") {
            !self.packFiles().isEmpty
        }
        XCTAssertFalse(packFiles().isEmpty, "the second kill happened after a pack was published")

        // The dead process's lock is back in place (killBackup restores it): the next backup must not be blocked.
        XCTAssertEqual(lockFiles().count, 1)
        let b = try coffer(["backup", "--json", src.description])
        XCTAssertEqual(b.code, 0, "backup after kill -9 (with the dead process's lock present) failed: \(b.stderr)")
        XCTAssertEqual(backupSummary(b)["files_new"] as? Int, files + 20)
        XCTAssertEqual(lockFiles().count, 0, "the stale lock of the killed backup is removed and the new one released")
        XCTAssertEqual(try snapshotIDs().count, 1)

        let target = work.appending("restore")
        let r = try coffer(["restore", "latest", "--target", target.description])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [])
        let check = try coffer(["check", "--read-data"])
        XCTAssertEqual(check.code, 0, "check --read-data after the resumed backup: \(check.stderr)")
    }

    /// kill -9 as soon as the index file of a backup appears (between index and snapshot, or just after the
    /// snapshot): either the snapshot exists and restores exactly, or it does not exist; the repository checks
    /// clean either way and the next backup works.
    func testKillAtTheEndOfABackupLeavesNoHalfSnapshot() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try initRepository()
        for round in 0..<3 {
            try writeRandomFile(src.appending("round-\(round).bin"), size: 700_000, seed: UInt64(300 + round))
            let indexesBefore = entryNames(repo.appending("index")).count
            let snapshotsBefore = entryNames(repo.appending("snapshots")).count
            let p = try startCoffer(["backup", src.description])
            let hit = poll(timeout: 60, whileRunning: p) { self.entryNames(self.repo.appending("index")).count > indexesBefore }
            p.killHard()
            let res = p.wait()
            XCTAssertTrue(hit, "round \(round): the index was written (exit \(res.code): \(res.stderr))")
            let snapshots = entryNames(repo.appending("snapshots")).count
            XCTAssertTrue([snapshotsBefore, snapshotsBefore + 1].contains(snapshots), "round \(round)")
            XCTAssertEqual(entryNames(repo.appending("index")).count, indexesBefore + 1, "round \(round)")
            let check = try coffer(["check", "--read-data"])
            XCTAssertEqual(check.code, 0, "round \(round) (killed: \(p.wasKilled)): \(check.stderr)")
            XCTAssertEqual(try snapshotIDs().count, snapshots)
            if snapshots > snapshotsBefore {
                let target = work.appending("r\(round)")
                try ok(["restore", "latest", "--target", target.description])
                XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [], "round \(round)")
            }
        }
        let b = try coffer(["backup", "--json", src.description])
        XCTAssertEqual(b.code, 0, b.stderr)
        XCTAssertLessThan(backupSummary(b)["bytes_added"] as? Int ?? Int.max, 64 << 10, "data indexed before the kills is reused")
        let target = work.appending("final")
        try ok(["restore", "latest", "--target", target.description])
        XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [])
        try ok(["check", "--read-data"])
    }

    /// Starts `backup src`, waits (≤ 60 s) until `reached` holds, SIGKILLs it, then verifies the repository.
    /// The killed process's lock file is put back afterwards, so the next command meets a stale lock.
    private func killBackup(of src: RawPath, moment: String, file: StaticString = #filePath, line: UInt = #line,
                            until reached: () -> Bool) throws {
        let p = try startCoffer(["backup", src.description])
        let hit = poll(timeout: 60, whileRunning: p, reached)
        let stillRunning = p.isRunning
        p.killHard()
        let res = p.wait()
        guard hit, stillRunning, p.wasKilled else {
            XCTFail("kill \(moment): the moment was not reached while the backup ran (exit \(res.code)): \(res.stderr)", file: file, line: line)
            throw Abort(message: "kill \(moment) not reached")
        }
        let locks = lockFiles()
        XCTAssertEqual(locks.count, 1, "kill \(moment): the killed backup leaves exactly its own lock", file: file, line: line)

        let check = try coffer(["check"])
        XCTAssertEqual(check.code, 0, "kill \(moment): check failed: \(check.stderr)", file: file, line: line)
        XCTAssertFalse(check.stderr.contains("coffer:"), "kill \(moment): check reported errors: \(check.stderr)", file: file, line: line)
        XCTAssertTrue(check.stdout.contains("no errors found"), check.stdout, file: file, line: line)
        let full = try coffer(["check", "--read-data"])
        XCTAssertEqual(full.code, 0, "kill \(moment): check --read-data failed: \(full.stderr)", file: file, line: line)
        XCTAssertEqual(try snapshotIDs().count, 0, "kill \(moment): no snapshot may exist", file: file, line: line)
        XCTAssertEqual(entryNames(repo.appending("snapshots")), [], file: file, line: line)
        XCTAssertEqual(lockFiles().count, 0, "kill \(moment): check removes the stale lock of the dead pid", file: file, line: line)

        // Put the dead process's lock back: the next backup must treat it as stale, not as a conflict.
        for l in locks { try writeBytes(repo.appending("locks").appending(l.name), l.bytes, mode: 0o600) }
    }

    // MARK: - 2. Full disk

    /// A backup of 20 MiB into a 6 MiB tmpfs fails with exit 1 and one line naming ENOSPC and the file,
    /// leaves no snapshot, no staged file and no lock; after the filesystem grows the same backup succeeds.
    func testFullDiskFailsCleanlyAndTheRepositoryRecovers() throws {
        let mnt = work.appending("small")
        try mountTmpfs(mnt, size: "6m")
        defer { unmount(mnt) }
        let small = mnt.appending("repo")
        let env: [String: String?] = ["COFFER_REPO": small.description]
        try ok(["init", "--kdf-memory", "1MiB"], env: env)

        let src = work.appending("src")
        try mkdirs(src)
        try writeRandomFile(src.appending("one.bin"), size: 10 << 20, seed: 21)
        try writeRandomFile(src.appending("two.bin"), size: 10 << 20, seed: 22)
        try writeFile(src.appending("text"), "hello\n")

        let b = try coffer(["backup", src.description], env: env)
        XCTAssertEqual(b.code, 1, "a backup that fills the disk exits 1: \(b.stderr)")
        let lines = stderrLines(b)
        XCTAssertEqual(lines.count, 1, "exactly one line on stderr: \(b.stderr)")
        XCTAssertTrue(b.stderr.contains("No space left on device"), b.stderr)
        XCTAssertTrue(b.stderr.contains(small.description + "/"), "the message names the file being written: \(b.stderr)")
        XCTAssertEqual(entryNames(small.appending("snapshots")), [], "no snapshot after a failed backup")
        XCTAssertEqual(entryNames(small.appending("tmp")), [], "no staged files are left in repo/tmp")
        XCTAssertEqual(entryNames(small.appending("locks")), [], "the lock is released")
        XCTAssertEqual(try snapshotList(env: env).count, 0)
        let check = try coffer(["check"], env: env)
        XCTAssertEqual(check.code, 0, "check after ENOSPC: \(check.stderr)")

        // Free space (grow the tmpfs) and back up the same data.
        let grown = try run("/bin/sh", ["-c", "mount -o remount,size=64m \(shellQuote(mnt))"])
        let backedUp: RawPath
        if grown.code == 0 {
            backedUp = src
        } else {
            backedUp = work.appending("smaller")
            try mkdirs(backedUp)
            try writeRandomFile(backedUp.appending("small.bin"), size: 1 << 20, seed: 23)
        }
        let again = try coffer(["backup", backedUp.description], env: env)
        XCTAssertEqual(again.code, 0, "backup after freeing space: \(again.stderr)")
        XCTAssertEqual(try snapshotList(env: env).count, 1)
        let target = work.appending("restore")
        try ok(["restore", "latest", "--target", target.description], env: env)
        XCTAssertEqual(TreeCompare.differences(backedUp, restored(backedUp, under: target)), [])
        let full = try coffer(["check", "--read-data"], env: env)
        XCTAssertEqual(full.code, 0, full.stderr)
    }

    /// Runs out of space at every stage of a small backup (lock, pack, index, snapshot) by leaving
    /// 0, 4, 8, … KiB free: each attempt either succeeds with a snapshot or fails with one ENOSPC line,
    /// no snapshot, no staged file, no lock, and a repository that checks clean.
    func testRunningOutOfSpaceAtEachStageNeverLeavesDebris() throws {
        let mnt = work.appending("tiny")
        try mountTmpfs(mnt, size: "1m")
        defer { unmount(mnt) }
        let src = work.appending("src")
        try mkdirs(src)
        try writeRandomFile(src.appending("data.bin"), size: 9000, seed: 31)
        try writeFile(src.appending("hello"), "hello\n")
        let filler = mnt.appending("filler")
        var failures = 0, successes = 0
        var stages: [String] = []          // what each attempt left: "lock/pack", "pack", "index", "ok"
        var free = 0
        while free <= 96 && successes == 0 {
            let small = mnt.appending("repo-\(free)")
            let env: [String: String?] = ["COFFER_REPO": small.description]
            try ok(["init", "--kdf-memory", "1MiB"], env: env)
            // Fill the filesystem so that `free` KiB remain.
            let df = try run("/bin/sh", ["-c", "df -k --output=avail \(shellQuote(mnt)) | tail -1"])
            let avail = Int(df.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            try sh("head -c \(max(0, avail - free))k /dev/zero > \(shellQuote(filler)) 2>/dev/null || true")

            let b = try coffer(["backup", src.description], env: env)
            let what = "with \(free) KiB free"
            XCTAssertTrue([0, 1].contains(b.code), "\(what): exit \(b.code): \(b.stderr)")
            let packs = packFiles(in: small).count, indexes = entryNames(small.appending("index")).count
            if b.code == 0 {
                successes += 1
                stages.append("ok")
                XCTAssertEqual(entryNames(small.appending("snapshots")).count, 1, what)
            } else {
                failures += 1
                stages.append(indexes > 0 ? "index" : packs > 0 ? "pack" : "none")
                XCTAssertEqual(stderrLines(b).count, 1, "\(what): one line on stderr: \(b.stderr)")
                XCTAssertTrue(b.stderr.contains("No space left on device"), "\(what): \(b.stderr)")
                XCTAssertTrue(b.stderr.contains(small.description + "/"), "\(what): the file is named: \(b.stderr)")
                XCTAssertEqual(entryNames(small.appending("snapshots")), [], "\(what): no snapshot")
            }
            XCTAssertEqual(entryNames(small.appending("tmp")), [], "\(what): no staged files left")
            XCTAssertEqual(entryNames(small.appending("locks")), [], "\(what): the lock is released")
            try Posix.remove(filler)
            let check = try coffer(["check"], env: env)
            XCTAssertEqual(check.code, 0, "\(what): check: \(check.stderr)")
            if b.code != 0 {
                // With space again, the same backup completes in the same repository.
                let retry = try coffer(["backup", src.description], env: env)
                XCTAssertEqual(retry.code, 0, "\(what): retry after freeing space: \(retry.stderr)")
            }
            let target = work.appending("restore-\(free)")
            try ok(["restore", "latest", "--target", target.description], env: env)
            XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [], what)
            try sh("rm -rf \(shellQuote(small)) \(shellQuote(target))")
            free += 4
        }
        XCTAssertGreaterThanOrEqual(failures, 3, "several stages ran out of space: \(stages)")
        XCTAssertEqual(successes, 1, "with enough space the backup succeeds: \(stages)")
        XCTAssertTrue(stages.contains("pack") || stages.contains("index"),
                      "some attempts failed after publishing a pack (index or snapshot stage): \(stages)")
    }

    // MARK: - 3. Concurrent backups

    func testTwoConcurrentBackupsOfDifferentDirectories() throws {
        let a = work.appending("a"), b = work.appending("b")
        try mkdirs(a); try mkdirs(b)
        try writeRandomFile(a.appending("own-a.bin"), size: 3 << 20, seed: 41)
        try writeRandomFile(b.appending("own-b.bin"), size: 3 << 20, seed: 42)
        // The same content in both: both writers may store it, any copy must do.
        try writeRandomFile(a.appending("shared.bin"), size: 2 << 20, seed: 43)
        try writeRandomFile(b.appending("shared.bin"), size: 2 << 20, seed: 43)
        try writeFile(a.appending("note"), "a\n")
        try writeFile(b.appending("note"), "b\n")
        try initRepository()

        let pa = try startCoffer(["backup", "--json", a.description])
        let pb = try startCoffer(["backup", "--json", b.description])
        // Both hold their lock at the same moment: the two backups really overlap.
        var overlapped = false
        _ = poll(timeout: 60) {
            if lockFiles().count >= 2 { overlapped = true }
            return overlapped || (!pa.isRunning && !pb.isRunning)
        }
        let ra = pa.wait(), rb = pb.wait()
        XCTAssertTrue(overlapped, "both backups held their lock at the same time")
        XCTAssertEqual(ra.code, 0, "backup of a: \(ra.stderr)")
        XCTAssertEqual(rb.code, 0, "backup of b: \(rb.stderr)")
        XCTAssertEqual(lockFiles().count, 0)

        let list = try snapshotList()
        XCTAssertEqual(list.count, 2)
        let check = try coffer(["check", "--read-data"])
        XCTAssertEqual(check.code, 0, "check --read-data after concurrent backups: \(check.stderr)")
        for (dir, name) in [(a, "ra"), (b, "rb")] {
            guard let id = list.first(where: { ($0["paths"] as? [String]) == [dir.description] })?["id"] as? String else {
                XCTFail("no snapshot of \(dir)"); continue
            }
            let target = work.appending(name)
            let r = try coffer(["restore", id, "--target", target.description])
            XCTAssertEqual(r.code, 0, r.stderr)
            XCTAssertEqual(TreeCompare.differences(dir, restored(dir, under: target)), [], "restore of \(dir)")
        }
    }

    /// `check` and `backup` both take shared locks, so they may run together. A backup that completes while
    /// `check --read-data` is verifying packs (the check is paused there with SIGSTOP, detected from its
    /// read counter in /proc/<pid>/io) must not make the check report damage.
    func testCheckRunningDuringABackupReportsNoFalseDamage() throws {
        try initRepository()
        for i in 0..<3 {
            let d = work.appending("d\(i)")
            try mkdirs(d)
            try writeRandomFile(d.appending("f.bin"), size: 3 << 20, seed: UInt64(500 + i))
            try ok(["backup", d.description])
        }
        let sizes = try packFiles().map { try Posix.lstat($0).size }
        XCTAssertEqual(sizes.count, 3)
        let smallest = sizes.min() ?? 0, total = sizes.reduce(0, +)

        for attempt in 0..<5 {
            let check = try startCoffer(["check", "--read-data"])
            var paused = false
            let deadline = Monotonic.now() + 30
            while check.isRunning && Monotonic.now() < deadline {
                // A pack has been read (the index files were read before any pack): pause the check here.
                if readCharacters(check.pid) >= smallest {
                    _ = Glibc.kill(check.pid, SIGSTOP)
                    paused = readCharacters(check.pid) < total   // not every pack read yet: still verifying packs
                    break
                }
                usleep(500)
            }
            if !paused {
                _ = Glibc.kill(check.pid, SIGCONT)
                _ = check.wait()
                continue
            }
            let d = work.appending("new-\(attempt)")
            try mkdirs(d)
            try writeFile(d.appending("f"), "written while check ran \(attempt)\n")
            let b = try coffer(["backup", d.description])
            XCTAssertEqual(b.code, 0, "backup during check: \(b.stderr)")
            _ = Glibc.kill(check.pid, SIGCONT)
            let r = check.wait()
            XCTAssertEqual(r.code, 0, "check that ran while a backup completed reports false damage: \(r.stdout) \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("missing from the index"), r.stderr)
            try ok(["check"])
            return
        }
        throw XCTSkip("could not pause check while it was verifying packs")
    }

    /// Bytes a process has read so far (rchar in /proc/<pid>/io); 0 if unavailable.
    private func readCharacters(_ pid: Int32) -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("rchar:") {
            return Int64(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }

    // MARK: - 4. Corruption

    /// One flipped byte in a pack: check --read-data names the pack and the damaged file (exit 13);
    /// restore exits 13 naming that file and restores the intact files exactly.
    /// A truncated pack is found by plain check (exit 13).
    func testDamagedPackIsNamedAndIntactFilesStillRestore() throws {
        let src = work.appending("src")
        try mkdirs(src)
        let names = ["alpha.bin", "bravo.bin", "charlie.bin"]
        for (i, n) in names.enumerated() { try writeRandomFile(src.appending(n), size: (2 << 20) + i * 400_000, seed: UInt64(51 + i)) }
        try initRepository()
        try ok(["backup", src.description])
        let copy = work.appending("repo-copy")
        try sh("cp -a \(shellQuote(repo)) \(shellQuote(copy))")

        let packs = packFiles()
        XCTAssertEqual(packs.count, 1)
        guard let pack = packs.first else { return }
        let packID = RawPath.escape(pack.lastComponent)
        let size = try Posix.lstat(pack).size
        try flipByte(pack, at: size / 2)

        let full = try coffer(["check", "--read-data"])
        XCTAssertEqual(full.code, 13, "check --read-data on a damaged pack: \(full.stdout) \(full.stderr)")
        XCTAssertTrue(full.stderr.contains(String(packID.prefix(12))), "the damaged pack is named: \(full.stderr)")
        let damaged = names.filter { full.stderr.contains(src.appending($0).description) }
        XCTAssertEqual(damaged.count, 1, "exactly the file holding the flipped byte is named: \(full.stderr)")

        let target = work.appending("restore")
        let r = try coffer(["restore", "latest", "--target", target.description])
        XCTAssertEqual(r.code, 13, "restore of damaged data exits 13: \(r.stderr)")
        for n in damaged {
            XCTAssertTrue(r.stderr.contains(n), "restore names the damaged file \(n): \(r.stderr)")
        }
        for n in names where !damaged.contains(n) {
            let orig = src.appending(n), back = restored(src, under: target).appending(n)
            XCTAssertEqual(try? TreeCompare.readAll(back), try TreeCompare.readAll(orig), "intact file \(n) restored exactly")
            XCTAssertEqual((try? Posix.lstat(back))?.mtime, try Posix.lstat(orig).mtime, n)
            XCTAssertFalse(r.stderr.contains(n), "intact file \(n) is not reported: \(r.stderr)")
        }

        // Truncation is visible without reading data.
        let env: [String: String?] = ["COFFER_REPO": copy.description, "COFFER_CACHE_DIR": work.appending("cache-copy").description]
        guard let copiedPack = packFiles(in: copy).first else { return XCTFail("no pack in the copy") }
        try sh("truncate -s \(size / 2) \(shellQuote(copiedPack))")
        let t = try coffer(["check"], env: env)
        XCTAssertEqual(t.code, 13, "check finds a truncated pack: \(t.stdout) \(t.stderr)")
        XCTAssertTrue(t.stderr.contains(String(packID.prefix(12))), t.stderr)
        XCTAssertTrue(t.stderr.contains("truncated"), t.stderr)
    }

    /// Pack names follow the repository's format version: version 2 (what init writes) names a
    /// pack by the SHA-256 of its header envelope and trailer, version 1 by the whole file. In
    /// both, check --read-data passes on intact packs and names a pack whose bytes changed: a
    /// changed header breaks a version-2 name, any changed byte a version-1 name.
    func testPackNamesFollowTheFormatVersionAndCheckVerifiesThem() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeRandomFile(src.appending("data.bin"), size: 3 << 20, seed: 77)
        try initRepository()
        let config = repo.appending("config")
        let text = try XCTUnwrap(String(bytes: TreeCompare.readAll(config), encoding: .utf8))
        XCTAssertTrue(text.contains("\"version\" : 2"), text)
        try ok(["backup", src.description])
        guard let pack = packFiles().first else { return XCTFail("no pack") }
        let bytes = try TreeCompare.readAll(pack)
        let n = bytes.count - 8
        let headerLength = Int(bytes[n]) << 24 | Int(bytes[n + 1]) << 16 | Int(bytes[n + 2]) << 8 | Int(bytes[n + 3])
        XCTAssertEqual(Hex.encode(SHA256.hash(Array(bytes.suffix(headerLength + 8)))), RawPath.escape(pack.lastComponent))
        try ok(["check", "--read-data"])
        try flipByte(pack, at: Int64(n - headerLength / 2))    // inside the header envelope
        let damaged = try coffer(["check", "--read-data"])
        XCTAssertEqual(damaged.code, 13, damaged.stdout + damaged.stderr)
        XCTAssertTrue(damaged.stderr.contains("SHA-256 of its header mismatch"), damaged.stderr)
        XCTAssertTrue(damaged.stderr.contains(String(RawPath.escape(pack.lastComponent).prefix(12))), damaged.stderr)

        // A version-1 repository (made before version 2 existed) keeps whole-file names.
        let old = work.appending("repo-v1")
        let env: [String: String?] = ["COFFER_REPO": old.description, "COFFER_CACHE_DIR": work.appending("cache-v1").description]
        try ok(["init", "--kdf-memory", "1MiB"], env: env)
        let v1 = try TreeCompare.readAll(old.appending("config"))
        let edited = try XCTUnwrap(String(bytes: v1, encoding: .utf8)).replacingOccurrences(of: "\"version\" : 2", with: "\"version\" : 1")
        XCTAssertNotEqual(edited, String(bytes: v1, encoding: .utf8))
        try Data(edited.utf8).write(to: URL(fileURLWithPath: old.appending("config").description))
        try ok(["backup", src.description], env: env)
        guard let oldPack = packFiles(in: old).first else { return XCTFail("no pack in the version-1 repository") }
        XCTAssertEqual(Hex.encode(SHA256.hash(try TreeCompare.readAll(oldPack))), RawPath.escape(oldPack.lastComponent))
        try ok(["check", "--read-data"], env: env)
        try flipByte(oldPack, at: 100)                          // inside the first blob
        let oldDamaged = try coffer(["check", "--read-data"], env: env)
        XCTAssertEqual(oldDamaged.code, 13, oldDamaged.stdout + oldDamaged.stderr)
        XCTAssertTrue(oldDamaged.stderr.contains("SHA-256 of the file mismatch"), oldDamaged.stderr)
    }

    /// A pack that is truncated or gone is damage: restore must say so with exit 13 (not the generic 1),
    /// naming the pack, and any repository path it names must be the real one (data/<2 hex>/<id>).
    func testRestoreReportsMissingAndTruncatedPacksAsDamage() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeRandomFile(src.appending("blob.bin"), size: 1 << 20, seed: 61)
        try initRepository()
        try ok(["backup", src.description])
        guard let pack = packFiles().first else { return XCTFail("no pack") }
        let id = RawPath.escape(pack.lastComponent)
        let copy = work.appending("repo-copy")
        try sh("cp -a \(shellQuote(repo)) \(shellQuote(copy))")

        try sh("truncate -s 1000 \(shellQuote(pack))")
        let t = try coffer(["restore", "latest", "--target", work.appending("r1").description])
        XCTAssertEqual(t.code, 13, "restore from a truncated pack: \(t.stderr)")
        XCTAssertTrue(t.stderr.contains(String(id.prefix(12))), t.stderr)

        let env: [String: String?] = ["COFFER_REPO": copy.description, "COFFER_CACHE_DIR": work.appending("cache-copy").description]
        guard let copiedPack = packFiles(in: copy).first else { return XCTFail("no pack in the copy") }
        try Posix.remove(copiedPack)
        let m = try coffer(["restore", "latest", "--target", work.appending("r2").description], env: env)
        XCTAssertEqual(m.code, 13, "restore with a pack missing: \(m.stderr)")
        XCTAssertTrue(m.stderr.contains(String(id.prefix(12))), m.stderr)
        if m.stderr.contains(copy.appending("data").description + "/") {
            XCTAssertTrue(m.stderr.contains(copiedPack.description), "the message names the real pack path \(copiedPack): \(m.stderr)")
        }
    }

    /// One damaged snapshot object (or index file) must not take the whole repository offline for a client
    /// without a warm catalog (another host, a lost cache): `check` still runs to the end from the repository
    /// alone and names the damaged object (exit 13); the intact snapshot is listed and restores; backup works.
    func testOneDamagedSnapshotOrIndexDoesNotTakeTheRepositoryOffline() throws {
        let a = work.appending("a"), b = work.appending("b")
        try mkdirs(a); try mkdirs(b)
        try writeRandomFile(a.appending("one.bin"), size: 600_000, seed: 91)
        try writeRandomFile(b.appending("two.bin"), size: 600_000, seed: 92)
        try initRepository()
        try ok(["backup", a.description])
        let firstSnapshots = entryNames(repo.appending("snapshots"))
        let firstIndex = entryNames(repo.appending("index"))
        try ok(["backup", b.description])
        guard firstSnapshots.count == 1, firstIndex.count == 1 else { return XCTFail("expected one snapshot and one index") }
        let badSnapshot = firstSnapshots[0], badIndex = firstIndex[0]
        let copy = work.appending("repo-copy")
        try sh("cp -a \(shellQuote(repo)) \(shellQuote(copy))")

        // (a) the first snapshot object is damaged; a client with no catalog opens the repository.
        let snapFile = repo.appending("snapshots").appending(badSnapshot)
        try flipByte(snapFile, at: try Posix.lstat(snapFile).size / 2)
        let coldA: [String: String?] = ["COFFER_CACHE_DIR": work.appending("cold-a").description]
        let check = try coffer(["check"], env: coldA)
        XCTAssertEqual(check.code, 13, check.stderr)
        XCTAssertTrue(check.stdout.contains("checked 2 snapshots"), "check runs to the end despite one damaged snapshot: \(check.stdout) \(check.stderr)")
        XCTAssertTrue(check.stderr.contains(String(badSnapshot.prefix(8))), "the damaged snapshot is named: \(check.stderr)")
        let list = try coffer(["snapshots", "--json"], env: coldA)
        let parsed = (try? JSONSerialization.jsonObject(with: Data(list.stdout.utf8))) as? [[String: Any]]
        let intact = parsed?.first { ($0["paths"] as? [String]) == [b.description] }?["id"] as? String
        XCTAssertNotNil(intact, "the intact snapshot is still listed: exit \(list.code) \(list.stdout) \(list.stderr)")
        if let intact {
            let target = work.appending("r")
            let r = try coffer(["restore", intact, "--target", target.description], env: coldA)
            XCTAssertEqual(r.code, 0, "the intact snapshot restores: \(r.stderr)")
            XCTAssertEqual(TreeCompare.differences(b, restored(b, under: target)), [])
        }
        let more = try coffer(["backup", b.description], env: coldA)
        XCTAssertEqual(more.code, 0, "a new backup is possible: \(more.stderr)")

        // (b) the first index file is damaged (in a pristine copy); check still reports from the repository alone.
        let coldB: [String: String?] = ["COFFER_REPO": copy.description, "COFFER_CACHE_DIR": work.appending("cold-b").description]
        let indexFile = copy.appending("index").appending(badIndex)
        try flipByte(indexFile, at: try Posix.lstat(indexFile).size / 2)
        let ci = try coffer(["check"], env: coldB)
        XCTAssertEqual(ci.code, 13, ci.stderr)
        XCTAssertTrue(ci.stdout.contains("checked 2 snapshots"), "check runs to the end despite one damaged index file: \(ci.stdout) \(ci.stderr)")
        XCTAssertTrue(ci.stderr.contains(String(badIndex.prefix(12))), "the damaged index file is named: \(ci.stderr)")
        XCTAssertTrue(ci.stderr.contains(String(badSnapshot.prefix(8))), "the snapshot that depends on it is named: \(ci.stderr)")
    }

    // MARK: - 6. The local catalog

    func testLostCatalogIsRebuiltAndDeduplicationSurvives() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeRandomFile(src.appending("big.bin"), size: 3 << 20, seed: 71)
        try writeRandomFile(src.appending("more.bin"), size: 2 << 20, seed: 72)
        try writeFile(src.appending("note"), "one\n")
        try initRepository()
        try ok(["backup", src.description])
        try writeFile(src.appending("note"), "two\n")
        try ok(["backup", src.description])

        try sh("rm -rf \(shellQuote(cache))")
        XCTAssertEqual(try snapshotIDs().count, 2, "snapshots are listed from the repository without a catalog")

        try sh("rm -rf \(shellQuote(cache))")
        let b = try ok(["backup", "--json", src.description])
        let s = backupSummary(b)
        XCTAssertLessThan(s["bytes_added"] as? Int ?? Int.max, 64 << 10, "unchanged data is deduplicated without a catalog: \(s)")
        XCTAssertEqual(try snapshotIDs().count, 3)

        let rebuilt = try ok(["catalog", "rebuild"])
        XCTAssertTrue(rebuilt.stdout.contains("3 snapshots"), rebuilt.stdout)
        XCTAssertNotNil(rebuilt.stdout.range(of: #"[1-9][0-9]* blobs"#, options: .regularExpression), rebuilt.stdout)
        let rj = try ok(["catalog", "rebuild", "--json"])
        let counts = try JSONSerialization.jsonObject(with: Data(rj.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(counts?["snapshots"] as? Int, 3)
        XCTAssertGreaterThan(counts?["blobs"] as? Int ?? 0, 5)

        // A catalog others could read is refused, naming the file.
        let dirs = entryNames(cache)
        XCTAssertEqual(dirs.count, 1)
        let catalog = cache.appending(dirs.first ?? "?").appending("catalog.sqlite")
        for mode: UInt32 in [0o644, 0o640] {
            try Posix.setPermissions(catalog, mode)
            let r = try coffer(["snapshots"])
            XCTAssertNotEqual(r.code, 0, "a catalog with mode \(String(mode, radix: 8)) is refused")
            XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(catalog.description), "the error names the catalog: \(r.stderr)")
            XCTAssertEqual(try Posix.lstat(catalog).permissions, mode, "the refused catalog is left alone")
        }
        try Posix.setPermissions(catalog, 0o600)
        XCTAssertEqual(try snapshotIDs().count, 3)
    }

    // MARK: - 9. No plaintext in the repository

    func testRepositoryNeverContainsPlaintext() throws {
        let contentMarker = "CofferContentMarker-6d1f0a9e"
        let nameMarker = "CofferNameMarker-b83c27d4"
        let src = work.appending("src")
        let dir = src.appending("\(nameMarker)-dir")
        try mkdirs(dir)
        // Large and highly compressible (compressed before encryption), and a small one-chunk file.
        try writeFile(dir.appending("\(nameMarker).txt"), String(repeating: "\(contentMarker) the quick brown fox\n", count: 60_000))
        try writeFile(src.appending("small-\(nameMarker)"), "\(contentMarker)\n")
        try Posix.makeSymlink(src.appending("link"), target: Array("\(nameMarker)-target".utf8))
        try Posix.setExtendedAttribute(src.appending("small-\(nameMarker)"), name: Array("user.\(nameMarker)".utf8),
                                       value: Array(contentMarker.utf8))
        try initRepository()
        try ok(["backup", "--tag", "\(nameMarker)-tag", "--host", "\(nameMarker)-host", src.description])
        try ok(["check", "--read-data"])
        try ok(["restore", "latest", "--target", work.appending("restore").description])

        // grep works: it finds both markers in the source.
        let sanity = try run("/bin/grep", ["-r", "-l", "-a", "-F", "-e", contentMarker, "-e", nameMarker, src.description])
        XCTAssertEqual(sanity.code, 0)
        for marker in [contentMarker, nameMarker, String(contentMarker.prefix(16)), String(nameMarker.prefix(16))] {
            let g = try run("/bin/grep", ["-r", "-l", "-a", "-F", "-e", marker, repo.description])
            XCTAssertEqual(g.code, 1, "plaintext \"\(marker)\" found in the repository: \(g.stdout)\(g.stderr)")
        }
    }

    // MARK: - 10. Append-only

    func testBackupNeverChangesOrRemovesExistingObjects() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", src.description])
        let before = inventory(repo)
        XCTAssertGreaterThanOrEqual(before.count, 5, "config, key, pack, index, snapshot")

        try writeFile(src.appending("etc").appending("hosts"), "10.1.1.1 changed\n")
        try writeRandomFile(src.appending("etc").appending("new.bin"), size: 1 << 20, seed: 81)
        try ok(["backup", src.description])
        try ok(["backup", "--host", "other", src.appending("home").description])
        let after = inventory(repo)
        XCTAssertGreaterThan(after.count, before.count, "the second backup added objects")
        for (path, object) in before.sorted(by: { $0.key < $1.key }) {
            guard let now = after[path] else { XCTFail("\(path) disappeared"); continue }
            XCTAssertEqual(now.size, object.size, "\(path) changed size")
            XCTAssertEqual(now.mtime, object.mtime, "\(path) was modified")
            XCTAssertEqual(now.inode, object.inode, "\(path) was replaced")
            XCTAssertTrue(now.content == object.content, "\(path) changed content")
        }
        // Reading commands change nothing either.
        try ok(["check", "--read-data"])
        try ok(["snapshots"])
        try ok(["ls", "latest"])
        try ok(["restore", "latest", "--target", work.appending("r").description])
        try ok(["catalog", "rebuild"])
        try ok(["unlock"])
        let final = inventory(repo)
        XCTAssertEqual(Set(final.keys), Set(after.keys), "reading commands add or remove nothing")
        for (path, object) in after {
            XCTAssertTrue(final[path].map { $0.mtime == object.mtime && $0.content == object.content } ?? false, "\(path) changed")
        }
    }

    private struct ObjectState { let size: Int64; let mtime: Store.Timespec; let inode: UInt64; let content: [UInt8] }

    /// Every file under the repository except locks/ and tmp/.
    private func inventory(_ root: RawPath) -> [String: ObjectState] {
        var out: [String: ObjectState] = [:]
        func walk(_ dir: RawPath, _ rel: String) {
            for name in (try? Posix.readDirectory(dir)) ?? [] {
                let n = RawPath.escape(name)
                if rel.isEmpty && (n == "locks" || n == "tmp") { continue }
                let p = dir.appending(name)
                guard let st = try? Posix.lstat(p) else { continue }
                if st.kind == .directory { walk(p, rel + "/" + n); continue }
                out[rel + "/" + n] = ObjectState(size: st.size, mtime: st.mtime, inode: st.inode,
                                                 content: (try? TreeCompare.readAll(p)) ?? [])
            }
        }
        walk(root, "")
        return out
    }
}
