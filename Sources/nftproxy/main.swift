print("nftproxy")
