import ArgumentParser
import Foundation
import Store

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a snapshot (or parts of it) into a directory.",
        discussion: """
            Paths keep their absolute location below the target: restoring /etc to /tmp/r creates /tmp/r/etc. \
            Existing files at the destination are replaced. Owners are restored by number when run as root.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "With 'latest': the newest snapshot of this host.")
    var host: String?

    @Option(name: [.customShort("t"), .long], help: "Directory to restore into (created if missing).")
    var target: String

    @Option(name: [.customShort("i"), .customLong("include")], help: "Only this snapshot path and what is below it (repeatable).")
    var includes: [String] = []

    @Argument(help: "Snapshot id prefix or 'latest'.")
    var snapshot: String

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open()
            let record = try repo.findSnapshot(snapshot, host: host)
            let start = Monotonic.now()
            let restorer = Restorer(repository: repo, options: .init(target: RawPath(target), includes: includes.map { RawPath($0) },
                                                                      workers: max(2, ProcessInfo.processInfo.activeProcessorCount + 1)))
            let line = output.showProgress ? ProgressLine(restorer.progress, verb: "restore:") : nil
            let s: Restorer.Summary
            do { s = try restorer.run(snapshot: record) } catch { line?.finish(); throw error }
            line?.finish()
            let elapsed = Monotonic.now() - start
            for e in s.errors { Console.error(e) }
            if output.json {
                struct Out: Encodable {
                    let snapshot_id: String; let files: Int; let dirs: Int; let others: Int
                    let bytes: Int64; let duration_seconds: Double; let errors: [String]
                }
                Console.print(JSON.encode(Out(snapshot_id: record.id, files: s.files, dirs: s.dirs, others: s.others,
                                              bytes: s.bytes, duration_seconds: elapsed, errors: s.errors)))
            } else if !output.quiet {
                Console.print("restored snapshot \(record.shortID) to \(RawPath(target).normalizedAbsolute()): \(s.files) files, \(s.dirs) directories, \(s.others) other, \(formatBytes(s.bytes)) in \(formatDuration(elapsed))\(s.errors.isEmpty ? "" : ", \(s.errors.count) errors")")
            }
            if s.errors.isEmpty { return Exit.ok }
            return s.damaged ? Exit.damaged : Exit.failure
        }
    }
}
