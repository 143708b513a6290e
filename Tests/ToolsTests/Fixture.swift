import XCTest
import Glibc
@testable import Store

/// Builds a directory tree with every file type and metadata kind Coffer must reproduce.
extension CofferTestCase {
    struct FixtureInfo {
        let root: RawPath
        let fileCount: Int
    }

    @discardableResult
    func makeFixture(at root: RawPath) throws -> FixtureInfo {
        try mkdirs(root)
        let etc = root.appending("etc"), home = root.appending("home"), ann = home.appending("ann")
        for d in [etc, home, ann, root.appending("dev"), root.appending("tmp")] { try Posix.makeDirectory(d, permissions: 0o755) }
        var files = 0
        try writeFile(etc.appending("hosts"), "127.0.0.1 localhost\n"); files += 1
        try writeFile(etc.appending("empty"), ""); files += 1
        try writeBytes(etc.appending("big.bin"), randomBytes(3 << 20 + 12345, seed: 1)); files += 1
        try writeFile(etc.appending("passwd-tool"), "#!/bin/sh\n", mode: 0o4755); files += 1
        try writeFile(etc.appending("group-tool"), "#!/bin/sh\n", mode: 0o2711); files += 1
        try Posix.setPermissions(root.appending("tmp"), 0o1777)
        // Hardlinks: a pair and a triple
        try writeFile(ann.appending("linked-a"), "shared content\n"); files += 1
        try Posix.makeHardLink(ann.appending("linked-b"), existing: ann.appending("linked-a")); files += 1
        try writeBytes(ann.appending("t1"), randomBytes(700_000, seed: 2)); files += 1
        try Posix.makeHardLink(ann.appending("t2"), existing: ann.appending("t1")); files += 1
        try Posix.makeHardLink(etc.appending("t3"), existing: ann.appending("t1")); files += 1
        // Symlinks: relative, absolute, dangling, to a directory
        try Posix.makeSymlink(ann.appending("rel-link"), target: Array("linked-a".utf8))
        try Posix.makeSymlink(ann.appending("abs-link"), target: Array("/etc/hostname".utf8))
        try Posix.makeSymlink(ann.appending("dangling"), target: Array("does/not/exist".utf8))
        try Posix.makeSymlink(root.appending("etc-link"), target: Array("etc".utf8))
        // Sparse file: 10 MiB with 4 KiB of data at 5 MiB, and a file that is all hole
        let sparse = ann.appending("sparse.img")
        let fh = try Store.FileHandle.create(sparse, permissions: 0o640)
        try fh.truncate(10 << 20)
        try randomBytes(4096, seed: 3).withUnsafeBytes { try fh.pwrite($0, at: 5 << 20) }
        fh.close(); files += 1
        let hole = ann.appending("all-hole")
        let fh2 = try Store.FileHandle.create(hole, permissions: 0o600)
        try fh2.truncate(1 << 20)
        fh2.close(); files += 1
        // Special files
        try Posix.makeNode(root.appending("dev").appending("fifo"), kind: .fifo, permissions: 0o620, rdev: 0)
        if geteuid() == 0 {
            try Posix.makeNode(root.appending("dev").appending("null"), kind: .charDevice, permissions: 0o666, rdev: Posix.makeDevice(major: 1, minor: 3))
            try Posix.makeNode(root.appending("dev").appending("loop200"), kind: .blockDevice, permissions: 0o660, rdev: Posix.makeDevice(major: 7, minor: 200))
        }
        // Names: spaces, newline, invalid UTF-8, non-ASCII
        try writeFile(ann.appending("name with spaces"), "spaces\n"); files += 1
        try writeFile(ann.appending(Array("new\nline".utf8)), "newline\n"); files += 1
        try writeFile(ann.appending([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]), "invalid utf8\n"); files += 1
        try writeFile(ann.appending("ünïcødé ✓"), "unicode\n"); files += 1
        // Owners (numeric ids with no name) and xattrs incl. a POSIX ACL
        if geteuid() == 0 {
            try Posix.setOwner(ann.appending("name with spaces"), uid: 1234, gid: 5678)
            try Posix.setOwner(ann, uid: 1000, gid: 1000)
            try Posix.setOwner(ann.appending("rel-link"), uid: 4321, gid: 8765)
            // chown clears setuid: restore the mode afterwards as an admin would
        }
        try Posix.setExtendedAttribute(etc.appending("hosts"), name: Array("user.comment".utf8), value: Array("hello xattr".utf8))
        try Posix.setExtendedAttribute(ann, name: Array("user.dir".utf8), value: [0, 1, 2, 255])
        try sh("setfacl -m u:1234:rw \(shellQuote(etc.appending("big.bin"))) && setfacl -d -m g:5678:rx \(shellQuote(home))")
        // Timestamps with nanoseconds, set last (children before parents)
        var n: Int64 = 0
        func stamp(_ p: RawPath) throws {
            n += 1
            try Posix.setTimes(p, atime: Timespec(seconds: 1_600_000_000 + n * 1000, nanoseconds: Int32(123_456_789 - n)),
                               mtime: Timespec(seconds: 1_500_000_000 + n * 777, nanoseconds: Int32(987_654_321 - n)))
        }
        func walk(_ p: RawPath) throws {
            let st = try Posix.lstat(p)
            if st.kind == .directory { for c in try Posix.readDirectory(p) { try walk(p.appending(c)) } }
            try stamp(p)
        }
        try walk(root)
        return FixtureInfo(root: root, fileCount: files)
    }

    func shellQuote(_ p: RawPath) -> String {
        "'" + p.description.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
