// nftproxy-bench: scale benchmark of nftproxy (docs/benchmarks.md, tools/benchmark.sh).
NftproxyBench.main()
