/// Overwrites every byte of `bytes` with zero without the optimiser eliding the store; the
/// array keeps its count. The corresponding C function is OPENSSL_cleanse.
public func secureZero(_ bytes: inout [UInt8]) {
    OpenSSLMemory.cleanse(&bytes)
}
