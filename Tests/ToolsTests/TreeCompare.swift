import XCTest
import Glibc
@testable import Store

/// Compares two directory trees entry by entry: kind, content (bytes and holes), permissions,
/// owner, mtime (and atime for files), nanoseconds included, symlink targets, device numbers,
/// xattrs, and hardlink structure. Returns human-readable differences.
enum TreeCompare {
    struct Options {
        var compareAtime = true
        var compareHoles = true
        /// Paths (relative, bytes) whose directory mtime may differ (e.g. the top level itself).
        var ignoreTopMtime = true
    }

    static func differences(_ a: RawPath, _ b: RawPath, options: Options = Options()) -> [String] {
        var diffs: [String] = []
        var linksA: [String: String] = [:]   // "dev:ino" -> first relative path
        var linksB: [String: String] = [:]
        func rel(_ comps: [[UInt8]]) -> String { RawPath(bytes: [0x2f] + comps.joined(separator: [0x2f])).description }

        func visit(_ comps: [[UInt8]]) {
            var pa = a, pb = b
            for c in comps { pa = pa.appending(c); pb = pb.appending(c) }
            let r = rel(comps)
            guard let sa = try? Posix.lstat(pa) else { diffs.append("\(r): missing in source"); return }
            guard let sb = try? Posix.lstat(pb) else { diffs.append("\(r): missing in restore"); return }
            if sa.kind != sb.kind { diffs.append("\(r): kind \(sa.kind) vs \(sb.kind)"); return }
            if sa.permissions != sb.permissions { diffs.append("\(r): permissions \(String(sa.permissions, radix: 8)) vs \(String(sb.permissions, radix: 8))") }
            if sa.uid != sb.uid || sa.gid != sb.gid { diffs.append("\(r): owner \(sa.uid):\(sa.gid) vs \(sb.uid):\(sb.gid)") }
            if !(comps.isEmpty && options.ignoreTopMtime) && sa.mtime != sb.mtime {
                diffs.append("\(r): mtime \(sa.mtime) vs \(sb.mtime)")
            }
            if options.compareAtime && sa.kind == .file && sa.atime != sb.atime { diffs.append("\(r): atime \(sa.atime) vs \(sb.atime)") }
            let xa = (try? Posix.extendedAttributes(pa)) ?? []
            let xb = (try? Posix.extendedAttributes(pb)) ?? []
            if xa.map({ $0.name + [0] + $0.value }) != xb.map({ $0.name + [0] + $0.value }) {
                diffs.append("\(r): xattrs \(xa.map { RawPath.escape($0.name) }) vs \(xb.map { RawPath.escape($0.name) })")
            }
            if sa.kind != .directory && sa.nlink > 1 {
                let ka = "\(sa.device):\(sa.inode)", kb = "\(sb.device):\(sb.inode)"
                let fa = linksA[ka], fb = linksB[kb]
                if fa != fb { diffs.append("\(r): hardlink structure differs (\(fa ?? "first") vs \(fb ?? "first"))") }
                if fa == nil { linksA[ka] = r }
                if fb == nil { linksB[kb] = r }
            }
            switch sa.kind {
            case .file:
                if sa.size != sb.size { diffs.append("\(r): size \(sa.size) vs \(sb.size)"); return }
                if let ca = try? readAll(pa), let cb = try? readAll(pb), ca != cb { diffs.append("\(r): content differs") }
                if options.compareHoles {
                    let ea = extents(pa, sa.size), eb = extents(pb, sb.size)
                    if ea != eb { diffs.append("\(r): data/hole layout \(ea) vs \(eb)") }
                }
            case .symlink:
                if (try? Posix.readLink(pa)) != (try? Posix.readLink(pb)) { diffs.append("\(r): symlink target differs") }
            case .charDevice, .blockDevice:
                if sa.rdev != sb.rdev { diffs.append("\(r): rdev \(sa.rdev) vs \(sb.rdev)") }
            case .directory:
                let na = (try? Posix.readDirectory(pa)) ?? []
                let nb = (try? Posix.readDirectory(pb)) ?? []
                if na != nb {
                    diffs.append("\(r): entries differ: only in source \(Set(na).subtracting(nb).map { RawPath.escape($0) }), only in restore \(Set(nb).subtracting(na).map { RawPath.escape($0) })")
                }
                for n in na where nb.contains(n) { visit(comps + [n]) }
            default:
                break
            }
        }
        visit([])
        return diffs
    }

    static func readAll(_ p: RawPath) throws -> [UInt8] {
        let fh = try Store.FileHandle.openForReading(p)
        defer { fh.close() }
        return try fh.readExactly(count: Int(try fh.status().size), at: 0)
    }

    static func extents(_ p: RawPath, _ size: Int64) -> String {
        guard let fh = try? Store.FileHandle.openForReading(p), let e = try? fh.dataExtents(size: size) else { return "?" }
        fh.close()
        return e.map { "\($0.offset)+\($0.length)" }.joined(separator: ",")
    }
}
