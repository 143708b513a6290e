import ArgumentParser
import Store

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Manage the local catalog (a cache of the repository's index, snapshots and file metadata).",
        subcommands: [Rebuild.self])

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recreate the local catalog from the repository alone.")

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try runReportingErrors {
                let repo = try repository.openForWriting()
                try repo.rebuildCatalog()
                let n = try repo.snapshots().count
                if output.json {
                    Console.print(JSON.encode(["blobs": repo.catalog.blobCount, "snapshots": n]))
                } else if !output.quiet {
                    Console.print("catalog rebuilt: \(repo.catalog.blobCount) blobs, \(n) snapshots (\(repo.catalog.path))")
                }
                return Exit.ok
            }
        }
    }
}

struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove stale locks (of processes that are gone), or all locks with --remove-all.")

    @OptionGroup var repository: RepositoryOptions

    @Flag(help: "Remove every lock, including those of running processes.")
    var removeAll = false

    func run() throws {
        try runReportingErrors {
            let repo = try repository.openForWriting()
            let n = try RepositoryLock.removeLocks(repo, all: removeAll)
            Console.print("removed \(n) lock\(n == 1 ? "" : "s")")
            return Exit.ok
        }
    }
}
