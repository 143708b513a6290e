import ArgumentParser
import Foundation
import Store

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up files and directories into a new snapshot.",
        discussion: """
            Unchanged files (same size, mtime, ctime and inode as in the local catalog) are not read again. \
            Files that vanish or cannot be read are reported and skipped; the snapshot is still saved, marked \
            partial, and the exit code is 3.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Host name recorded in the snapshot (default: this machine's).")
    var host: String?

    @Option(name: .customLong("tag"), help: "Tag for the snapshot (repeatable).")
    var tags: [String] = []

    @Option(name: .customLong("exclude"), help: "Skip paths or names matching this fnmatch pattern (repeatable).")
    var excludes: [String] = []

    @Flag(name: [.customShort("x"), .long], help: "Do not cross filesystem boundaries below each path.")
    var oneFileSystem = false

    @Option(help: ArgumentHelp("Files read at once: 2 reads files of 1 MiB or more on a second thread while the walk goes on; 1 reads one file at a time (for a source on a spinning disk, where two readers make it seek).",
                               valueName: "1|2"))
    var readConcurrency = 2

    @Argument(help: "Files and directories to back up.")
    var paths: [String] = []

    func validate() throws {
        if paths.isEmpty { throw ValidationError("nothing to back up: give at least one path") }
        if let h = host, h.isEmpty || h.contains("/") { throw ValidationError("--host must be a non-empty name without '/'") }
        if !(1...2).contains(readConcurrency) { throw ValidationError("--read-concurrency must be 1 or 2") }
    }

    func run() throws {
        try runReportingErrors {
            let raw = paths.map { RawPath($0).normalizedAbsolute() }
            // The source is read ahead (metadata and file-cache rows, no key needed) while the
            // passphrase KDF runs. (A write-only key has no KDF; its catalog depends on the key,
            // and the backup starts its own read-ahead once that is open.)
            let early = try repository.catalogBeforeUnlocking()
            let prefetcher = early.map {
                SourcePrefetcher(paths: raw, excludes: excludes, oneFileSystem: oneFileSystem, catalog: $0)
            }
            prefetcher?.start()
            defer { prefetcher?.cancel() }
            let repo = try repository.openForWriting(catalog: early)
            let lock = try RepositoryLock.acquire(repo, exclusive: false)
            defer { lock.release() }
            // Fail before writing anything if *every* path is missing; single ones are reported by the walk.
            if raw.allSatisfy({ (try? Posix.lstat($0)) == nil }) {
                throw StoreError(.invalidArgument, "\(raw[0]): no such file or directory")
            }
            let options = BackupOptions(paths: raw, host: host ?? SystemInfo.hostname, tags: tags, excludes: excludes,
                                        oneFileSystem: oneFileSystem, workers: max(2, ProcessInfo.processInfo.activeProcessorCount),
                                        program: "coffer \(Coffer.version)",
                                        laneMinimumSize: readConcurrency >= 2 ? 1 << 20 : nil)
            let progress = BackupProgress()
            var line: ProgressLine?
            let cancelled = OnceFlag()
            if output.showProgress {
                line = ProgressLine(progress, verb: "backup:")
                DispatchQueue.global(qos: .utility).async {
                    Scanner.scan(raw, excludes: excludes, progress: progress, cancelled: { cancelled.isSet })
                }
            }
            let result: BackupResult
            do {
                result = try Archiver(repository: repo, options: options, progress: progress, prefetcher: prefetcher).run()
            } catch {
                cancelled.set()
                line?.finish()
                throw error
            }
            cancelled.set()
            line?.finish()
            let s = result.summary
            for e in s.errors { Console.error(e) }
            if output.json {
                struct Out: Encodable {
                    let snapshot_id: String
                    let short_id: String
                    let partial: Bool
                    let summary: BackupSummary
                }
                Console.print(JSON.encode(Out(snapshot_id: result.snapshotID, short_id: String(result.snapshotID.prefix(8)),
                                              partial: result.snapshot.partial, summary: s)))
            } else if !output.quiet {
                Console.print("Files: \(s.filesNew) new, \(s.filesChanged) changed, \(s.filesUnchanged) unchanged; \(s.dirs) directories")
                Console.print("Read \(formatBytes(s.bytesRead)) of \(formatBytes(s.bytesTotal)), added \(formatBytes(s.bytesAdded)) to the repository in \(formatDuration(s.durationSeconds))")
                Console.print("snapshot \(result.snapshotID.prefix(8)) saved\(result.snapshot.partial ? " (partial: \(s.errors.count) errors)" : "")")
            } else {
                Console.print(String(result.snapshotID.prefix(8)))
            }
            return result.snapshot.partial ? Exit.partial : Exit.ok
        }
    }
}

/// A thread-safe one-way flag.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
