import XCTest
import Foundation
import Glibc
@testable import Store

/// Real FUSE mounts of real repositories: compared against the source with diff, a metadata
/// walk, cp -a and rsync; writes refused; damage gives EIO on exactly the affected file.
final class MountTests: CofferTestCase {
    var mountpoint: RawPath { work.appending("mnt") }
    var mounted = false

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard access("/dev/fuse", R_OK | W_OK) == 0 else { throw XCTSkip("/dev/fuse is not usable here") }
        try Posix.makeDirectory(mountpoint, permissions: 0o755)
    }

    override func tearDownWithError() throws {
        if mounted { _ = try? run("/bin/fusermount3", ["-u", "-z", mountpoint.description]) }
        try super.tearDownWithError()
    }

    /// Mounts with --daemon; returns the daemon's pid (from the "(pid N)" in the message).
    @discardableResult
    func mount(_ extra: [String] = []) throws -> pid_t {
        let r = try ok(["mount", "--daemon", "--log", work.appending("mount.log").description] + extra + [mountpoint.description])
        mounted = true
        let text = r.stdout + r.stderr
        guard let at = text.range(of: "(pid ") else { return 0 }
        return pid_t(text[at.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    func unmount() throws {
        let r = try run("/bin/fusermount3", ["-u", mountpoint.description])
        XCTAssertEqual(r.code, 0, r.stderr)
        mounted = false
    }

    /// The source tree as seen through the mount's newest snapshot.
    func inMount(_ src: RawPath, _ dir: String = "snapshots/latest") -> RawPath {
        RawPath(bytes: mountpoint.appending(dir).bytes + src.bytes)
    }

    func testMountShowsEverySnapshotWithExactMetadata() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", "--host", "web1", "--tag", "nightly", src.description])
        try mount()

        // Layout
        XCTAssertEqual(try Posix.readDirectory(mountpoint).map { String(decoding: $0, as: UTF8.self) }, ["hosts", "ids", "snapshots", "tags"])
        let snaps = try Posix.readDirectory(mountpoint.appending("snapshots")).map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(snaps.count, 2)
        XCTAssertTrue(snaps.contains("latest"))
        XCTAssertEqual(String(decoding: try Posix.readLink(mountpoint.appending("snapshots").appending("latest")), as: UTF8.self),
                       snaps.first { $0 != "latest" })
        XCTAssertNotNil(try? Posix.lstat(inMount(src, "hosts/web1/latest")))
        XCTAssertNotNil(try? Posix.lstat(inMount(src, "tags/nightly/latest")))
        let id = try snapshotIDs()[0]
        XCTAssertNotNil(try? Posix.lstat(inMount(src, "ids/" + String(id.prefix(8)))))

        // Content and metadata: mode, owner, times with ns, xattrs/ACLs, symlinks, devices, hardlinks (same st_ino)
        var opts = TreeCompare.Options()
        opts.compareHoles = false   // FUSE reports no SEEK_HOLE; holes read back as zeros (content compared)
        XCTAssertEqual(TreeCompare.differences(src, inMount(src), options: opts), [])

        let diff = try run("/usr/bin/diff", ["-r", src.appending("etc").description, inMount(src).appending("etc").description])
        XCTAssertEqual(diff.code, 0, diff.stdout + diff.stderr)

        // rsync sees nothing to transfer, including ACLs, xattrs and hardlinks
        let rs = try run("/usr/bin/rsync", ["-aHAXn", "--checksum", "--itemize-changes",
                                            src.description + "/", inMount(src).description + "/"])
        XCTAssertEqual(rs.code, 0, rs.stderr)
        XCTAssertEqual(rs.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "", "rsync found differences")

        // cp -a out of the mount reproduces the tree
        let copy = work.appending("copy")
        let cp = try run("/bin/cp", ["-a", inMount(src).description, copy.description])
        XCTAssertEqual(cp.code, 0, cp.stderr)
        XCTAssertEqual(TreeCompare.differences(src, copy, options: opts).filter { !$0.contains("atime") }, [])

        // stat of a sparse file: size, and blocks that count only data
        let sparse = try Posix.lstat(inMount(src).appending("home").appending("ann").appending("sparse.img"))
        XCTAssertEqual(sparse.size, 10 << 20)
        XCTAssertEqual(sparse.blocks, 8)
    }

    func testMountWithAKeyFileAsksForNothing() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", src.description])
        let key = work.appending("admin.key")
        try ok(["key", "export-key", "--output", key.description, "--label", "mount at boot"])
        try ok(["mount", "--daemon", mountpoint.description],
               env: ["COFFER_KEY_FILE": key.description, "COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": nil])
        mounted = true
        let d = try run("/usr/bin/diff", ["-r", src.appending("etc").description, inMount(src).appending("etc").description])
        XCTAssertEqual(d.code, 0, d.stdout + d.stderr)
        try unmount()
    }

    func testWritesAreRefusedWithEROFS() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("file"), "data\n")
        try initRepository()
        try ok(["backup", src.description])
        try mount()
        let inside = inMount(src)
        func expectEROFS(_ what: String, _ rc: Int32, file: StaticString = #filePath, line: UInt = #line) {
            let e = errno
            XCTAssertEqual(rc, -1, what, file: file, line: line)
            XCTAssertEqual(e, EROFS, "\(what): errno \(e)", file: file, line: line)
        }
        expectEROFS("open for writing", inside.appending("file").withCString { open($0, O_WRONLY) })
        expectEROFS("create", inside.appending("new").withCString { open($0, O_WRONLY | O_CREAT, 0o644) })
        expectEROFS("unlink", inside.appending("file").withCString { unlink($0) })
        expectEROFS("mkdir", inside.appending("dir").withCString { mkdir($0, 0o755) })
        expectEROFS("chmod", inside.appending("file").withCString { chmod($0, 0o600) })
        expectEROFS("rename", inside.appending("file").withCString { a in inside.appending("g").withCString { rename(a, $0) } })
        XCTAssertThrowsError(try Posix.setExtendedAttribute(inside.appending("file"), name: Array("user.x".utf8), value: [1])) {
            XCTAssertEqual(($0 as? PosixError)?.errno, EROFS, "setxattr")
        }
        expectEROFS("symlink", inside.appending("l").withCString { symlink("file", $0) })
        var st = statvfs()
        XCTAssertEqual(mountpoint.withCString { statvfs($0, &st) }, 0)
        XCTAssertGreaterThan(st.f_blocks, 0)
        XCTAssertNotEqual(st.f_flag & UInt(ST_RDONLY), 0)
    }

    func testDamagedChunkGivesEIOOnlyForTheAffectedFile() throws {
        let src = work.appending("src")
        try mkdirs(src)
        for (i, size) in [(1, 2 << 20), (2, 3 << 20), (3, 2 << 20)] {
            try writeBytes(src.appending("f\(i)"), randomBytes(size, seed: UInt64(100 + i)))
        }
        try initRepository()
        try ok(["backup", src.description])
        // Flip one byte in the middle of the (only) pack: it lands inside one file's chunk.
        let packs = packFiles()
        XCTAssertEqual(packs.count, 1)
        let size = try Posix.lstat(packs[0]).size
        try flipByte(packs[0], at: size / 2)
        try mount()
        var failed: [String] = []
        for i in 1...3 {
            let p = inMount(src).appending("f\(i)")
            do {
                let got = try TreeCompare.readAll(p)
                XCTAssertEqual(got, try TreeCompare.readAll(src.appending("f\(i)")), "f\(i) read back wrong bytes")
            } catch let e as PosixError {
                XCTAssertEqual(e.errno, EIO, "f\(i): \(e)")
                failed.append("f\(i)")
            }
        }
        XCTAssertEqual(failed.count, 1, "exactly one file is damaged: \(failed)")
        // The rest of the filesystem keeps working, and the log names file and pack.
        XCTAssertNotNil(try? Posix.readDirectory(mountpoint.appending("snapshots")))
        let log = String(decoding: try TreeCompare.readAll(work.appending("mount.log")), as: UTF8.self)
        XCTAssertTrue(log.contains(failed.first ?? "?"), log)
        let packName = String(decoding: packs[0].lastComponent.prefix(12), as: UTF8.self)
        XCTAssertTrue(log.contains(packName), "log names the pack \(packName): \(log)")
    }

    /// Reading one file of a directory puts the following files into the kernel's page cache
    /// (FUSE_NOTIFY_STORE), with exactly their bytes: a reader then gets them without a request.
    func testReadingAFileFillsThePageCacheOfTheNextFiles() throws {
        let src = work.appending("src")
        try mkdirs(src)
        let names = (0..<12).map { String(format: "f%02d", $0) }
        for (i, n) in names.enumerated() {
            // Sizes that end mid-page, so the last partial page must come out right too. All 12
            // (187 KiB) are bundled into one chunk: below the 256 KiB minimum chunk size, no chunk
            // boundary can split a file (only a file's first chunk is pushed; with 300 KiB, a
            // boundary fell inside the last file now and then, and it had 3 or 4 of 8 pages).
            try writeBytes(src.appending(n), randomBytes(12_000 + 700 * i + 123, seed: UInt64(300 + i)))
        }
        try initRepository()
        try ok(["backup", src.description])
        try mount()
        let dir = inMount(src)
        XCTAssertEqual(try Posix.readDirectory(dir).count, names.count)   // the kernel learns the inodes
        let next = names.dropFirst().map { dir.appending($0) }
        let pages = try next.map { (Int(try Posix.lstat($0).size) + 4095) / 4096 }
        XCTAssertEqual(try next.map(residentPages), next.map { _ in 0 }, "nothing is cached before a read")
        XCTAssertEqual(try TreeCompare.readAll(dir.appending(names[0])), try TreeCompare.readAll(src.appending(names[0])))
        // A file counts once one poll saw all its pages resident: reclaim may drop cached pages
        // again at any time (these hosts run a DAMON pageout scheme for idle page cache), so
        // the test asks whether each file was filled, not whether it still is.
        let deadline = Monotonic.now() + 20
        var mostSeen = next.map { _ in 0 }
        while Monotonic.now() < deadline {
            let resident = try next.map(residentPages)
            mostSeen = zip(mostSeen, resident).map { max($0, $1) }
            if mostSeen == pages { break }
            usleep(10_000)   // polling interval; the deadline above bounds the wait
        }
        // Every page, the partial last one included, was cached; what is read is up to date.
        XCTAssertEqual(mostSeen, pages, "most pages seen resident at once in the following files")
        for n in names.dropFirst() {
            XCTAssertEqual(try TreeCompare.readAll(dir.appending(n)), try TreeCompare.readAll(src.appending(n)), n)
        }
    }

    /// Pages of `p` in the kernel's page cache (mincore over a mapping; mapping reads nothing).
    private func residentPages(_ p: RawPath) throws -> Int {
        let fh = try Store.FileHandle.openForReading(p)
        defer { fh.close() }
        let size = Int(try fh.status().size)
        let page = 4096
        guard size > 0, let map = mmap(nil, size, PROT_READ, MAP_SHARED, fh.fd, 0), map != MAP_FAILED else {
            throw PosixError(errno: errno, operation: "mmap", path: p)
        }
        defer { munmap(map, size) }
        var vec = [UInt8](repeating: 0, count: (size + page - 1) / page)
        guard mincore(map, size, &vec) == 0 else { throw PosixError(errno: errno, operation: "mincore", path: p) }
        return vec.filter { $0 & 1 != 0 }.count
    }

    func testSnapshotAddedWhileMountedAppears() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("a"), "one\n")
        try initRepository()
        try ok(["backup", "--host", "h1", src.description])
        try mount()
        XCTAssertEqual(try Posix.readDirectory(mountpoint.appending("snapshots")).count, 2)
        try writeFile(src.appending("a"), "two\n")
        try ok(["backup", "--host", "h2", src.description])
        let deadline = Monotonic.now() + 20
        var count = 0
        while Monotonic.now() < deadline {
            count = (try? Posix.readDirectory(mountpoint.appending("snapshots")).count) ?? 0
            if count == 3 { break }
            usleep(50_000)   // polling interval while waiting for the kernel's 1 s entry timeout
        }
        XCTAssertEqual(count, 3, "the new snapshot shows up in /snapshots")
        XCTAssertNotNil(try? Posix.lstat(mountpoint.appending("hosts").appending("h2")))
        let latest = try TreeCompare.readAll(inMount(src, "hosts/h2/latest").appending("a"))
        XCTAssertEqual(String(decoding: latest, as: UTF8.self), "two\n")
    }

    /// SIGTERM and SIGINT unmount and end the daemon, also while a reader is busy: a push to
    /// the page cache can wait for a read that the stopped loop still has to answer.
    func testSignalsUnmountAndEndTheDaemonDuringReads() throws {
        let src = work.appending("src")
        try mkdirs(src)
        for i in 0..<400 { try writeBytes(src.appending(String(format: "f%03d", i)), randomBytes(12_000 + 37 * i, seed: UInt64(i))) }
        try initRepository()
        try ok(["backup", src.description])
        for sig in [SIGTERM, SIGINT] {
            let pid = try mount()
            XCTAssertGreaterThan(pid, 0, "mount --daemon names the daemon's pid")
            let reader = Process()
            reader.executableURL = URL(fileURLWithPath: "/bin/sh")
            reader.arguments = ["-c", "cat ./* >/dev/null 2>&1"]
            reader.currentDirectoryURL = URL(fileURLWithPath: inMount(src).description)
            try reader.run()
            // Signal once the reader is under way (its first file is in the page cache).
            let first = inMount(src).appending("f000")
            let started = Monotonic.now() + 20
            while Monotonic.now() < started, (try? residentPages(first)) ?? 0 == 0 { usleep(1_000) }
            XCTAssertEqual(kill(pid, sig), 0)
            let deadline = Monotonic.now() + 30
            while Monotonic.now() < deadline, isRunning(pid) { usleep(10_000) }
            XCTAssertFalse(isRunning(pid), "the daemon is still running after signal \(sig)")
            let mounts = String(decoding: try TreeCompare.readAll(RawPath("/proc/self/mounts")), as: UTF8.self)
            XCTAssertFalse(mounts.contains(" \(mountpoint.description) "), "still mounted after signal \(sig)")
            mounted = false
            // The reader ends (with an error) once the mount is gone. Before the fix it hung in
            // the kernel, and so did the daemon's last thread: fail instead of waiting forever.
            let readerDeadline = Monotonic.now() + 30
            while Monotonic.now() < readerDeadline, reader.isRunning { usleep(10_000) }
            XCTAssertFalse(reader.isRunning, "a reader of the mount is stuck after signal \(sig)")
            if reader.isRunning { return }
        }
    }

    /// True while any thread of `pid` is alive (a zombie leader with live threads counts).
    private func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? TreeCompare.readAll(RawPath("/proc/\(pid)/stat")) else { return false }
        let text = String(decoding: stat, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return false }
        if !text[text.index(after: close)...].hasPrefix(" Z") { return true }
        return ((try? Posix.readDirectory(RawPath("/proc/\(pid)/task")).count) ?? 0) > 1
    }

    func testMountpointErrors() throws {
        try initRepository()
        let missing = try coffer(["mount", work.appending("nope").description])
        XCTAssertNotEqual(missing.code, 0)
        XCTAssertTrue(missing.stderr.contains("does not exist"), missing.stderr)
        try writeFile(mountpoint.appending("x"), "x")
        let notEmpty = try coffer(["mount", mountpoint.description])
        XCTAssertNotEqual(notEmpty.code, 0)
        XCTAssertTrue(notEmpty.stderr.contains("not empty"), notEmpty.stderr)
        try Posix.remove(mountpoint.appending("x"))
        try mount()
        let busy = try coffer(["mount", mountpoint.description])
        XCTAssertNotEqual(busy.code, 0)
        XCTAssertTrue(busy.stderr.contains("already mounted"), busy.stderr)
    }

    func testStaleMountOfKilledDaemonIsCleared() throws {
        try initRepository()
        try mount()
        // kill -9 the daemon: the mountpoint is left as a dead FUSE mount (ENOTCONN)
        let pids = try run("/usr/bin/pgrep", ["-f", "coffer mount .*\(mountpoint.description)"]).stdout
            .split(separator: "\n").compactMap { Int32($0) }
        XCTAssertFalse(pids.isEmpty)
        for p in pids { kill(p, SIGKILL) }
        let deadline = Monotonic.now() + 10
        var stale = false
        while Monotonic.now() < deadline {
            do { _ = try Posix.lstat(mountpoint) } catch let e as PosixError where e.errno == ENOTCONN || e.errno == ECONNABORTED { stale = true; break }
            usleep(20_000)
        }
        XCTAssertTrue(stale, "a killed daemon leaves a dead mount (ENOTCONN or ECONNABORTED)")
        let r = try coffer(["mount", "--daemon", mountpoint.description])
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("stale"), r.stderr)
        XCTAssertNotNil(try? Posix.readDirectory(mountpoint.appending("snapshots")))
    }
}
