import ArgumentParser
import Store

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new encrypted repository.",
        discussion: """
            The passphrase comes from COFFER_NEW_PASSWORD, --password-file / COFFER_PASSWORD_FILE, \
            COFFER_PASSWORD, or is asked twice on the terminal. The location must not exist or be an empty directory.
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("Argon2id memory for the passphrase slot (default 64MiB, t=3, p=1; more is slower to attack).", valueName: "size"))
    var kdfMemory: String?

    @Option(help: "A label for the first key slot.")
    var label: String?

    func run() throws {
        try runReportingErrors {
            let backend = try repository.backend()
            let kdf = try kdfParameters(memory: kdfMemory)
            var pass = try Passphrase.new(repository)
            defer { for i in pass.indices { pass[i] = 0 } }
            guard !pass.isEmpty else { throw StoreError(.invalidArgument, "refusing an empty passphrase") }
            let config = try Repository.create(backend: backend, passphrase: pass, kdf: kdf, label: label)
            if output.json {
                Console.print(JSON.encode(["id": config.id, "location": backend.location, "version": "\(config.version)"]))
            } else if !output.quiet {
                Console.print("created repository \(config.shortID) at \(backend.location)")
                Console.print("Keep the passphrase safe: without it the data cannot be read.")
            }
            return Exit.ok
        }
    }
}
