internal import CFuse3
import Glibc
import Store

/// The libfuse low-level session and every C callback, kept in this one file.
/// Callbacks find the `MountFS` through `fuse_req_userdata` (an unretained pointer kept
/// alive by the session object) and funnel every error into an errno reply.
public final class FuseSession {
    let fs: MountFS
    private var session: OpaquePointer?
    private let ops: UnsafeMutablePointer<fuse_lowlevel_ops>
    private var mounted = false
    let dirs = DirHandles()
    /// Set at init when the kernel can skip open/release (FUSE_CAP_NO_OPEN_SUPPORT): the first
    /// open is then declined with ENOSYS and every later read names the file by inode — one
    /// round trip per small file instead of three.
    fileprivate(set) var declineOpens = false

    /// Creates a session with `-o options` and mounts it at `mountpoint`.
    /// The corresponding C functions are `fuse_session_new` and `fuse_session_mount`.
    public init(fs: MountFS, mountpoint: String, options: [String]) throws {
        self.fs = fs
        ops = .allocate(capacity: 1)
        ops.initialize(to: fuse_lowlevel_ops())
        fillOperations(ops)
        var args = ["coffer"]
        if !options.isEmpty { args += ["-o", options.joined(separator: ",")] }
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        defer { for p in cargs { free(p) } }
        let se = cargs.withUnsafeMutableBufferPointer { buf in
            cfuse3_session_new(Int32(args.count), buf.baseAddress, ops, Unmanaged.passUnretained(self).toOpaque())
        }
        guard let se else {
            ops.deallocate()
            throw StoreError(.unsupported, "cannot start a FUSE session (is the fuse3 package installed and /dev/fuse usable?)")
        }
        session = se
        let rc = mountpoint.withCString { fuse_session_mount(se, $0) }
        guard rc == 0 else {
            fuse_session_destroy(se)
            session = nil
            throw StoreError(.io, "\(mountpoint): mount failed (see the message above; is /dev/fuse available and fusermount3 installed?)")
        }
        mounted = true
        // Prefetched small files go straight into the kernel's page cache (see `PagePusher`).
        fs.pagePusher.install { ino, bytes in
            bytes.withUnsafeBytes { cfuse3_notify_store(se, ino, $0.baseAddress, $0.count) == 0 }
        }
    }

    deinit {
        unmount()
        // A push still blocked in the kernel uses the session: leave it allocated (we are exiting).
        if let se = session, fs.pagePusher.waitIdle(seconds: 5) { fuse_session_destroy(se) }
        ops.deallocate()
    }

    /// Serves requests on `threads` worker threads until unmounted or SIGINT/SIGTERM/SIGHUP.
    public func run(threads: Int) -> Int32 {
        guard let se = session else { return -1 }
        guard cfuse3_signals_install() == 0 else {
            fs.log("cannot watch for signals (\(String(cString: strerror(errno)))): SIGINT and SIGTERM end the mount at once")
            fuse_set_signal_handlers(se)
            defer { fuse_remove_signal_handlers(se) }
            return withExtendedLifetime(self) { cfuse3_loop_mt(se, UInt32(max(1, threads))) }
        }
        let loopThread = pthread_self()
        let loopDone = Condition()
        var finished = false
        let watcher = PThread.start { [self] in
            guard cfuse3_signals_wait() > 0 else { return }
            // Pushes first: one may wait for a read that only the running loop can answer.
            fs.pagePusher.install(nil)
            if !fs.pagePusher.waitIdle(seconds: 5) { fs.log("a page-cache push did not finish in 5 s; stopping anyway") }
            fuse_session_exit(se)
            // Wake the loop's wait; again until it returns (the first poke can come too early).
            loopDone.withLock {
                while !finished {
                    pthread_kill(loopThread, SIGUSR2)
                    _ = loopDone.timedWait(until: Condition.deadline(in: 0.1))
                }
            }
        }
        let rc = withExtendedLifetime(self) { cfuse3_loop_mt(se, UInt32(max(1, threads))) }
        loopDone.withLock { finished = true; loopDone.broadcast() }
        fs.pagePusher.install(nil)
        cfuse3_signals_stop()
        pthread_join(watcher, nil)
        return rc
    }

    /// Unmounts (if still mounted). The corresponding C function is `fuse_session_unmount`.
    public func unmount() {
        fs.pagePusher.install(nil)
        guard mounted, let se = session else { return }
        fuse_session_unmount(se)
        mounted = false
    }

    /// Asks the loop to return.
    public func exit() {
        if let se = session { fuse_session_exit(se) }
    }

    // MARK: - Callbacks
}

/// Directory listings taken at opendir, served by offset.
final class DirHandles: @unchecked Sendable {
    private var lists: [UInt64: [FSDirEntry]] = [:]
    private var next: UInt64 = 1
    private let lock = Mutex()
    func open(_ l: [FSDirEntry]) -> UInt64 { lock.withLock { defer { next += 1 }; lists[next] = l; return next } }
    func get(_ h: UInt64) -> [FSDirEntry]? { lock.withLock { lists[h] } }
    func close(_ h: UInt64) { lock.withLock { lists[h] = nil } }
}

// MARK: - C callbacks (capture nothing; context comes from fuse_req_userdata)

/// Fills one readdir reply from `list`, starting at entry `from`. `add` writes entry i into
/// `room` bytes at `dst` (next offset i + 1) and returns the size it needed plus an undo for
/// when that did not fit; nil skips the entry.
fileprivate func replyDirectory(_ req: fuse_req_t?, _ list: [FSDirEntry], size: Int, from: Int,
                                add: (FSDirEntry, [CChar], UnsafeMutablePointer<CChar>, Int, off_t) -> (Int, (() -> Void)?)?) {
    // Not zero-filled first (the kernel asks for up to 128 KiB per call, and zeroing it cost
    // ~9 % of the daemon's time in a `find`): fuse_add_direntry* write every byte of an
    // entry, padding included, and only the `used` bytes are sent.
    let buf = [CChar](unsafeUninitializedCapacity: size) { b, initialized in
        var used = 0
        for i in from..<max(from, list.count) {
            let name = (list[i].name + [0]).map { CChar(bitPattern: $0) }
            guard let (need, undo) = add(list[i], name, b.baseAddress! + used, size - used, off_t(i + 1)) else { continue }
            if need > size - used {
                undo?()
                break
            }
            used += need
        }
        initialized = used
    }
    fuse_reply_buf(req, buf, buf.count)
}

fileprivate func fuseSession(_ req: fuse_req_t?) -> FuseSession {
    Unmanaged<FuseSession>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
}

fileprivate func fuseReply(_ req: fuse_req_t?, _ body: (FuseSession) throws(FSError) -> Void) {
    let s = fuseSession(req)
    do { try body(s) } catch { fuse_reply_err(req, error.errno) }
}

fileprivate func fuseStat(_ a: FSAttr) -> stat {
    var st = Glibc.stat()
    st.st_ino = UInt(a.ino)
    st.st_mode = a.mode
    st.st_nlink = UInt(a.nlink)
    st.st_uid = a.uid
    st.st_gid = a.gid
    st.st_rdev = UInt(a.rdev)
    st.st_size = Int(a.size)
    st.st_blocks = Int(a.blocks)
    st.st_blksize = 131072
    st.st_atim = timespec(tv_sec: Int(a.atime.seconds), tv_nsec: Int(a.atime.nanoseconds))
    st.st_mtim = timespec(tv_sec: Int(a.mtime.seconds), tv_nsec: Int(a.mtime.nanoseconds))
    st.st_ctim = timespec(tv_sec: Int(a.ctime.seconds), tv_nsec: Int(a.ctime.nanoseconds))
    return st
}

fileprivate func cName(_ p: UnsafePointer<CChar>?) -> [UInt8] {
    guard let p else { return [] }
    return Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
}


fileprivate func fillOperations(_ o: UnsafeMutablePointer<fuse_lowlevel_ops>) {
    o.pointee.`init` = { userdata, conn in
        guard let conn else { return }
        let noOpen = cfuse3_conn_init(conn) != 0
        Unmanaged<FuseSession>.fromOpaque(userdata!).takeUnretainedValue().declineOpens = noOpen
    }
    o.pointee.lookup = { req, parent, cname in
        fuseReply(req) { (s) throws(FSError) in
            let r = try s.fs.lookup(parent: parent, name: cName(cname))
            var e = fuse_entry_param()
            e.ino = r.id
            e.generation = 1
            e.attr = fuseStat(r.attr)
            e.attr_timeout = r.timeout
            e.entry_timeout = r.timeout
            fuse_reply_entry(req, &e)
        }
    }
    o.pointee.forget = { req, ino, n in
        fuseSession(req).fs.forget(ino, count: n)
        fuse_reply_none(req)
    }
    o.pointee.forget_multi = { req, count, items in
        let s = fuseSession(req)
        for i in 0..<count { s.fs.forget(items![i].ino, count: items![i].nlookup) }
        fuse_reply_none(req)
    }
    o.pointee.getattr = { req, ino, _ in
        fuseReply(req) { (s) throws(FSError) in
            let (a, t) = try s.fs.getattr(ino)
            var st = fuseStat(a)
            fuse_reply_attr(req, &st, t)
        }
    }
    o.pointee.readlink = { req, ino in
        fuseReply(req) { (s) throws(FSError) in
            let target = try s.fs.readlink(ino) + [0]
            target.withUnsafeBufferPointer { b in
                b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { _ = fuse_reply_readlink(req, $0) }
            }
        }
    }
    o.pointee.opendir = { req, ino, fi in
        fuseReply(req) { (s) throws(FSError) in
            let list = try s.fs.list(ino)
            fi!.pointee.fh = s.dirs.open(list)
            // Snapshot content never changes: the kernel keeps the listing, and listing the
            // directory again costs no readdir round trips (a second `find` of the bench
            // snapshot: 0.08-0.09 s -> 0.03 s). Virtual directories are re-read for new snapshots.
            if s.fs.isImmutable(ino) { cfuse3_fi_set_cache_readdir(fi) }
            fuse_reply_open(req, fi)
        }
    }
    o.pointee.readdir = { req, _, size, off, fi in
        fuseReply(req) { (s) throws(FSError) in
            guard let list = s.dirs.get(fi!.pointee.fh) else { throw FSError(EBADF) }
            replyDirectory(req, list, size: size, from: Int(off)) { entry, name, dst, room, next in
                var st = Glibc.stat()
                st.st_ino = UInt(entry.ino)
                st.st_mode = entry.mode
                return (fuse_add_direntry(req, dst, room, name, &st, next), nil)
            }
        }
    }
    o.pointee.readdirplus = { req, dirIno, size, off, fi in
        fuseReply(req) { (s) throws(FSError) in
            guard let list = s.dirs.get(fi!.pointee.fh) else { throw FSError(EBADF) }
            replyDirectory(req, list, size: size, from: Int(off)) { entry, name, dst, room, next in
                var e = fuse_entry_param()
                var looked: UInt64 = 0
                if entry.name == [0x2e] || entry.name == [0x2e, 0x2e] {
                    // "." and "..": no lookup reference is taken for these.
                    e.attr.st_ino = UInt(entry.ino)
                    e.attr.st_mode = entry.mode
                } else {
                    guard let r = try? s.fs.lookup(parent: dirIno, name: entry.name) else { return nil }
                    looked = r.id
                    e.ino = r.id
                    e.generation = 1
                    e.attr = fuseStat(r.attr)
                    e.attr_timeout = r.timeout
                    e.entry_timeout = r.timeout
                }
                let need = fuse_add_direntry_plus(req, dst, room, name, &e, next)
                // Not sent when it does not fit: give the lookup reference back.
                return (need, looked == 0 ? nil : { s.fs.forget(looked, count: 1) })
            }
        }
    }
    o.pointee.releasedir = { req, _, fi in
        fuseSession(req).dirs.close(fi!.pointee.fh)
        fuse_reply_err(req, 0)
    }
    o.pointee.open = { req, ino, fi in
        fuseReply(req) { (s) throws(FSError) in
            // The mount is "ro": the kernel refuses write opens before they get here.
            if s.declineOpens { throw FSError(ENOSYS) }
            fi!.pointee.fh = try s.fs.open(ino, flags: fi!.pointee.flags)
            cfuse3_fi_set_keep_cache(fi)   // snapshots are immutable: keep the page cache
            fuse_reply_open(req, fi)
        }
    }
    o.pointee.read = { req, ino, size, off, fi in
        fuseReply(req) { (s) throws(FSError) in
            let fh = fi!.pointee.fh
            let data = fh == 0 ? try s.fs.read(inode: ino, offset: Int64(off), count: size)
                               : try s.fs.read(fh, offset: Int64(off), count: size)
            replyIOV(req, data.segments)
        }
    }
    o.pointee.release = { req, _, fi in
        if fi!.pointee.fh != 0 { fuseSession(req).fs.release(fi!.pointee.fh) }
        fuse_reply_err(req, 0)
    }
    o.pointee.statfs = { req, _ in
        let f = fuseSession(req).fs.statfs()
        var v = statvfs()
        v.f_bsize = UInt(f.blockSize)
        v.f_frsize = UInt(f.blockSize)
        v.f_blocks = fsblkcnt_t(f.blocks)
        v.f_files = fsfilcnt_t(f.files)
        v.f_namemax = UInt(f.nameMax)
        v.f_flag = UInt(ST_RDONLY)
        fuse_reply_statfs(req, &v)
    }
    o.pointee.getxattr = { req, ino, cname, size in
        fuseReply(req) { (s) throws(FSError) in
            let n = cName(cname)
            guard let x = try s.fs.xattrs(ino).first(where: { $0.name == n }) else { throw FSError(ENODATA) }
            if size == 0 { fuse_reply_xattr(req, x.value.count); return }
            guard size >= x.value.count else { throw FSError(ERANGE) }
            x.value.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        }
    }
    o.pointee.listxattr = { req, ino, size in
        fuseReply(req) { (s) throws(FSError) in
            var names: [UInt8] = []
            for x in try s.fs.xattrs(ino) { names += x.name + [0] }
            if size == 0 { fuse_reply_xattr(req, names.count); return }
            guard size >= names.count else { throw FSError(ERANGE) }
            names.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        }
    }
    // Everything that would change the filesystem: read-only.
    o.pointee.setattr = { req, _, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.mknod = { req, _, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.mkdir = { req, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.unlink = { req, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.rmdir = { req, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.symlink = { req, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.rename = { req, _, _, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.link = { req, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.write = { req, _, _, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.create = { req, _, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.setxattr = { req, _, _, _, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.removexattr = { req, _, _ in fuse_reply_err(req, EROFS) }
    o.pointee.fallocate = { req, _, _, _, _, _ in fuse_reply_err(req, EROFS) }
}

/// Replies to a read with `segments` as one iovec list (fuse_reply_iov): the kernel gathers the
/// pieces, so chunk data goes out without being joined first. Each slice's storage is pinned
/// by a nested withUnsafeBytes while the reply is written.
private func replyIOV(_ req: fuse_req_t?, _ segments: [ArraySlice<UInt8>]) {
    var iov = [iovec]()
    iov.reserveCapacity(segments.count)
    func pin(_ i: Int) {
        guard i < segments.count else {
            _ = iov.withUnsafeBufferPointer { fuse_reply_iov(req, $0.baseAddress, Int32($0.count)) }
            return
        }
        segments[i].withUnsafeBytes { raw in
            iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count))
            pin(i + 1)
        }
    }
    pin(0)
}
