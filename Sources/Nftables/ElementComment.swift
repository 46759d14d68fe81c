/// An element's `comment "…"` as nft keeps it in `NFTA_SET_ELEM_USERDATA`: one attribute of
/// type 0 (`NFTNL_UDATA_SET_ELEM_COMMENT`), one length byte, the text and a terminating zero.
enum ElementComment {
    private static let commentType: UInt8 = 0

    /// The userdata of `text` (cut to ``SetElement/maximumCommentBytes`` bytes of UTF-8).
    static func userData(_ text: String) -> [UInt8] {
        let length = min(text.utf8.count, SetElement.maximumCommentBytes)
        var userData: [UInt8] = []
        userData.reserveCapacity(length + 3)
        userData.append(commentType)
        userData.append(UInt8(length + 1))
        userData.append(contentsOf: text.utf8.prefix(length))
        userData.append(0)
        return userData
    }

    /// The comment in `userData`, or nil when it holds something nftproxy does not write.
    static func text(_ userData: [UInt8]) -> String? {
        guard userData.count >= 3, userData[0] == commentType, Int(userData[1]) == userData.count - 2,
              userData.last == 0 else { return nil }
        return String(validating: userData[2..<(userData.count - 1)], as: UTF8.self)
    }
}
