import ArgumentParser
import Foundation
import FS
import Store

struct Mount: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mount every snapshot as a read-only filesystem.",
        discussion: """
            Layout: /snapshots/<time>/…, /hosts/<host>/<time>/…, /ids/<short id>/…, /tags/<tag>/<time>/…, \
            with a 'latest' link in each. Times are the snapshot's UTC start (suffix -1, -2… on collisions). \
            Runs in the foreground until unmounted ('fusermount3 -u MOUNTPOINT') or interrupted; --daemon returns \
            once the mount is ready. Snapshots added while mounted appear on the next listing.
            """)

    @OptionGroup var repository: RepositoryOptions

    @Flag(help: "Run in the background; return once the mount is ready.")
    var daemon = false

    @Option(help: ArgumentHelp("Memory for decrypted chunks (LRU).", valueName: "size"))
    var cacheSize: String = "256MiB"

    @Option(help: "FUSE worker threads.")
    var threads: Int = 4

    @Option(help: ArgumentHelp("Write read errors and notices to this file (default: stderr; syslog with --daemon).", valueName: "file"))
    var log: String?

    @Argument(help: "An empty directory to mount on.")
    var mountpoint: String

    func validate() throws {
        guard let c = parseSize(cacheSize), c >= 1 << 20 else { throw ValidationError("--cache-size: expected a size of at least 1MiB") }
        if threads < 1 || threads > 64 { throw ValidationError("--threads must be between 1 and 64") }
    }

    func run() throws {
        try runReportingErrors { try repository.refuseWriteOnly(); return Exit.ok }
        if daemon { return try runReportingErrors { try spawnDaemon() } }
        try runReportingErrors {
            let point = RawPath(mountpoint).normalizedAbsolute()
            if try MountPoint.prepare(point) { Console.warn("\(point): cleared a stale mount left by a crashed daemon") }
            let repo = try repository.open(cacheBytes: parseSize(cacheSize)!)
            let logger = Logger(path: log, daemon: ProcessInfo.processInfo.environment["COFFER_MOUNT_NOTIFY"] != nil)
            let fs = try MountFS(repository: repo, log: { logger.write($0) })
            var options = ["ro", "fsname=coffer", "subtype=coffer", "default_permissions"]
            if geteuid() == 0 { options.append("allow_other") }
            let session = try FuseSession(fs: fs, mountpoint: point.description, options: options)
            MountPoint.setReadahead(point, kilobytes: 4096)
            if ProcessInfo.processInfo.environment["COFFER_MOUNT_NOTIFY"] != nil {
                // Tell the waiting parent we are ready, then detach from its terminal.
                FileHandleOut.stdout.write("ready\n")
                setsid()
                // A shell starts background jobs with SIGINT ignored, and libfuse then leaves it
                // so; the detached daemon unmounts on SIGINT as on SIGTERM.
                signal(SIGINT, SIG_DFL)
                signal(SIGTERM, SIG_DFL)
                let null = open("/dev/null", O_RDWR)
                // All inherited stdio goes: a caller reading our output to EOF must not wait for the daemon.
                dup2(null, 0); dup2(null, 1); dup2(null, 2)
                if null > 2 { close(null) }
            } else {
                Console.print("mounted \(repo.location) at \(point) (read-only); unmount with 'fusermount3 -u \(point)' or Ctrl-C")
            }
            let rc = session.run(threads: threads)
            session.unmount()
            fs.shutdown()
            return rc == 0 ? Exit.ok : Exit.failure
        }
    }

    /// Re-runs this command in the background and waits until it reports the mount ready.
    private func spawnDaemon() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = CommandLine.arguments.dropFirst().filter { $0 != "--daemon" }
        var env = ProcessInfo.processInfo.environment
        env["COFFER_MOUNT_NOTIFY"] = "1"
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let line = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if line.hasPrefix("ready") {
            Console.print("mounted at \(RawPath(mountpoint).normalizedAbsolute()) (pid \(p.processIdentifier)); unmount with 'fusermount3 -u \(RawPath(mountpoint).normalizedAbsolute())'")
            return Exit.ok
        }
        p.waitUntilExit()
        return p.terminationStatus == 0 ? Exit.failure : p.terminationStatus
    }
}

/// Where the mount daemon's notices go: a file, syslog, or stderr.
final class Logger: @unchecked Sendable {
    private let fd: Int32
    private let useSyslog: Bool
    private let lock = NSLock()

    init(path: String?, daemon: Bool) {
        if let path {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            useSyslog = false
        } else {
            fd = 2
            useSyslog = daemon
            if daemon { openlog("coffer", LOG_PID, LOG_DAEMON) }
        }
    }

    func write(_ message: String) {
        lock.lock(); defer { lock.unlock() }
        if useSyslog {
            withVaList([message]) { vsyslog(LOG_ERR, "%s", $0) }
        } else {
            FileHandleOut(fd: fd).write("coffer mount: \(message)\n")
        }
    }
}
