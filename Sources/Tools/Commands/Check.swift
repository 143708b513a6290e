import ArgumentParser
import Store

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify the repository's structure (and with --read-data, every byte).",
        discussion: "Exits with 13 and names the damaged pack and the affected files when anything is wrong.")

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Read and authenticate every pack and blob.")
    var readData = false

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open()
            let lock = try RepositoryLock.acquire(repo, exclusive: false)
            defer { lock.release() }
            let checker = Checker(repository: repo)
            if output.showProgress {
                checker.onProgress = { FileHandleOut.stdout.write("\r\u{1b}[Kcheck: reading \($0)") }
            }
            let r = try checker.run(readData: readData)
            if output.showProgress { FileHandleOut.stdout.write("\r\u{1b}[K") }
            if output.json {
                struct Out: Encodable {
                    let ok: Bool; let errors: [String]; let warnings: [String]
                    let snapshots: Int; let trees: Int; let packs: Int; let blobs: Int; let bytes_read: Int64
                }
                Console.print(JSON.encode(Out(ok: r.ok, errors: r.errors, warnings: r.warnings, snapshots: r.snapshots,
                                              trees: r.trees, packs: r.packs, blobs: r.blobs, bytes_read: r.bytesRead), pretty: true))
            } else {
                for w in r.warnings { Console.warn(w) }
                for e in r.errors { Console.error(e) }
                if !output.quiet {
                    Console.print("checked \(r.snapshots) snapshots, \(r.trees) directories, \(r.packs) packs, \(r.blobs) blobs" +
                                  (readData ? ", read \(formatBytes(r.bytesRead))" : ""))
                    Console.print(r.ok ? "no errors found" : "\(r.errors.count) error(s) found")
                }
            }
            return r.ok ? Exit.ok : Exit.damaged
        }
    }
}
