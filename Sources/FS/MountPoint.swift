import Glibc
import Store

/// Checks and prepares a mountpoint before mounting.
public enum MountPoint {
    /// Ensures FUSE is usable and `path` is an empty directory that is not mounted. A stale FUSE
    /// mount left by a crashed daemon ("Transport endpoint is not connected") is detached first.
    /// Returns true when a stale mount was cleared.
    @discardableResult
    public static func prepare(_ path: RawPath) throws -> Bool {
        guard access("/dev/fuse", R_OK | W_OK) == 0 else {
            throw StoreError(.unsupported, "FUSE is not available: /dev/fuse is missing or not accessible (load the fuse module or install fuse3)")
        }
        var cleared = false
        do {
            _ = try Posix.lstat(path)
        } catch let e as PosixError where e.errno == ENOTCONN || e.errno == ECONNABORTED {
            try detachStale(path)
            cleared = true
        } catch let e as PosixError where e.errno == ENOENT {
            throw StoreError(.invalidArgument, "\(path): mountpoint does not exist")
        } catch let e as PosixError {
            throw StoreError(.io, e.description)
        }
        let st = try Posix.lstat(path)
        guard st.kind == .directory else { throw StoreError(.invalidArgument, "\(path): mountpoint is not a directory") }
        if isMountPoint(path) {
            throw StoreError(.invalidArgument, "\(path): something is already mounted there (unmount it with 'fusermount3 -u \(path)')")
        }
        if !(try Posix.readDirectory(path)).isEmpty {
            throw StoreError(.invalidArgument, "\(path): mountpoint is not empty")
        }
        return cleared
    }

    /// Lazily unmounts a dead FUSE mount (umount2 MNT_DETACH as root, else fusermount3 -u -z).
    static func detachStale(_ path: RawPath) throws {
        if path.withCString({ umount2($0, Int32(MNT_DETACH)) }) == 0 { return }
        var pid = pid_t()
        let args = ["fusermount3", "-u", "-z", path.description]
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        guard posix_spawnp(&pid, "fusermount3", nil, nil, &argv, environ) == 0 else {
            throw StoreError(.io, "\(path): stale mount found but fusermount3 could not be run")
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0 else { throw StoreError(.io, "\(path): stale mount found and could not be detached") }
    }

    /// Raises the kernel readahead of the mount at `path` (FUSE caps it at the bdi default of
    /// 128 KiB, whatever the filesystem asks for). Best effort: needs root; failures are ignored.
    public static func setReadahead(_ path: RawPath, kilobytes: Int) {
        guard let device = deviceNumber(path) else { return }
        let file = "/sys/class/bdi/\(device)/read_ahead_kb"
        let fd = open(file, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let text = "\(kilobytes)\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }

    /// "major:minor" of the filesystem mounted at `path`, from /proc/self/mountinfo.
    static func deviceNumber(_ path: RawPath) -> String? {
        mountinfoFields(path).map { String($0[2]) }
    }

    /// True when `path` is listed as a mountpoint in /proc/self/mountinfo.
    public static func isMountPoint(_ path: RawPath) -> Bool { mountinfoFields(path) != nil }

    /// The last mountinfo line whose mountpoint is `path`, split in fields.
    static func mountinfoFields(_ path: RawPath) -> [Substring]? {
        guard let f = fopen("/proc/self/mountinfo", "r") else { return nil }
        defer { fclose(f) }
        let want = path.normalizedAbsolute().bytes
        var line: UnsafeMutablePointer<CChar>?
        var cap = 0
        defer { free(line) }
        var found: [Substring]?
        while getline(&line, &cap, f) > 0 {
            let fields = String(cString: line!).split(separator: " ")
            guard fields.count > 4 else { continue }
            if unescapeMountinfo(String(fields[4])) == want { found = fields }
        }
        return found
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    static func unescapeMountinfo(_ s: String) -> [UInt8] {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            if b[i] == 0x5c, i + 3 < b.count, let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return out
    }
}
