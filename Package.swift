// swift-tools-version:6.0
// Coffer — encrypted, deduplicating backup store with a FUSE front end.
//
// Module graph (dependencies point one way):
//   Tools → FS → Store → {Tape, Crypto};  Tape → Crypto
// Each C library is a system-library target living inside the folder of the
// one Swift module allowed to import it.
import PackageDescription

let package = Package(
    name: "Coffer",
    products: [
        .executable(name: "coffer", targets: ["Tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries (pkg-config; installed by .ci/run / README set-up command).
        .systemLibrary(name: "COpenSSL", path: "Sources/Crypto/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CGPGME", path: "Sources/Crypto/CGPGME", pkgConfig: "gpgme",
                       providers: [.apt(["libgpgme-dev"])]),
        .systemLibrary(name: "CArgon2", path: "Sources/Crypto/CArgon2", pkgConfig: "libargon2",
                       providers: [.apt(["libargon2-dev"])]),
        .systemLibrary(name: "CSodium", path: "Sources/Crypto/CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/Store/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CFuse3", path: "Sources/FS/CFuse3", pkgConfig: "fuse3",
                       providers: [.apt(["libfuse3-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/Store/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLinux", path: "Sources/Store/CLinux"),

        .target(name: "Crypto", dependencies: ["COpenSSL", "CGPGME", "CArgon2", "CSodium"], path: "Sources/Crypto",
                exclude: ["COpenSSL", "CGPGME", "CArgon2", "CSodium"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "Tape", dependencies: ["Crypto"], path: "Sources/Tape",
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .target(name: "Store", dependencies: ["Crypto", "Tape", "CSQLite", "CZstd", "CLinux"], path: "Sources/Store",
                exclude: ["CSQLite", "CZstd", "CLinux"],
                swiftSettings: [.swiftLanguageMode(.v5), .unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .target(name: "FS", dependencies: ["Store", "CFuse3"], path: "Sources/FS", exclude: ["CFuse3"],
                swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "Tools", dependencies: [
                "FS", "Store", "Crypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ], path: "Sources/Tools", swiftSettings: [.swiftLanguageMode(.v5)]),

        .testTarget(name: "CryptoTests", dependencies: ["Crypto"], path: "Tests/CryptoTests",
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "Crypto", "FS"], path: "Tests/StoreTests",
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "ToolsTests", dependencies: ["Store", "Crypto"], path: "Tests/ToolsTests",
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
