import Netlink

// Names for the kernel numbers a ruleset mentions, for the compiler and the renderer
// (which do not import the wire layer). The numbers themselves come from the kernel
// headers, in the Netlink module; nft's datatype ids are `DataType.typeID`, verdict
// codes `Verdict.code`, families `TableFamily.protocolFamily`, hooks
// `BaseChain.Hook.number`, and IP protocol numbers `TransportProtocol.number`.

/// Bits of `ct state`, for ``Statement/bitTest(_:mask:isSet:)`` on ``Selector/ctState``.
public enum CtStateFlag {
    public static let invalid = ConntrackStateBit.invalid
    public static let established = ConntrackStateBit.established
    public static let related = ConntrackStateBit.related
    public static let new = ConntrackStateBit.new

    /// nft's name of each bit, lowest first.
    static let names: [(UInt32, String)] = [
        (invalid, "invalid"), (established, "established"), (related, "related"), (new, "new"),
    ]
}

/// Bits of `ct status`, for ``Statement/bitTest(_:mask:isSet:)`` on ``Selector/ctStatus``.
public enum CtStatusFlag {
    /// `snat`: the source was translated.
    public static let sourceNAT = ConntrackStatusBit.sourceNAT
    /// `dnat`: the destination was translated.
    public static let destinationNAT = ConntrackStatusBit.destinationNAT
    /// `confirmed`: the entry is in the conntrack table; clear only while its first packet
    /// is on its way through the hooks.
    public static let confirmed = ConntrackStatusBit.confirmed

    /// nft's name of each bit nftproxy tests.
    static let names: [(UInt32, String)] = [(sourceNAT, "snat"), (destinationNAT, "dnat")]
}

/// Route types `fib daddr type` yields, for comparisons on ``Selector/fibDestinationType``.
public enum FibAddressType {
    /// `local`: an address of this host.
    public static let local = FibAddressTypeNumber.local

    /// nft's name of each type nftproxy compares with.
    static let names: [(UInt32, String)] = [(local, "local")]
}
