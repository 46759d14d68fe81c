#ifndef NFTPROXY_CNETFILTER_SHIM_H
#define NFTPROXY_CNETFILTER_SHIM_H

#include <stdint.h>
#include <sys/socket.h>
/* glibc's <netinet/in.h> must come before the linux uapi headers (which pull in
 * <linux/in.h>, <linux/in6.h>): <linux/libc-compat.h> then skips the kernel's
 * duplicate struct definitions that clash with the Glibc module's. */
#include <netinet/in.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
/* enum ip_conntrack_status (IPS_DST_NAT, …): CTA_STATUS bits, for the Conntrack module. */
#include <linux/netfilter/nf_conntrack_common.h>
/* enum tcp_conntrack (TCP_CONNTRACK_ESTABLISHED, …): CTA_PROTOINFO_TCP_STATE values. */
#include <linux/netfilter/nf_conntrack_tcp.h>
/* RTN_* route types: what `fib daddr type` yields. */
#include <linux/rtnetlink.h>
/* ICMP_PORT_UNREACH, ICMPV6_PORT_UNREACH: the codes `reject` answers with. */
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/batch.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/set.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/udata.h>

/* MNL_SOCKET_BUFFER_SIZE is a function-like macro and does not import into Swift. */
static const size_t nftproxy_mnl_socket_buffer_size = 8192;

/* Helpers for macros Swift cannot see. */
static inline uint16_t nftproxy_nfnl_msg_type(uint16_t subsys, uint16_t msg) {
    return (uint16_t)((subsys << 8) | msg);
}

/* setns(2) and CLONE_NEWNET are GNU extensions that the Swift Glibc module does
 * not export; Netlink's NetworkNamespace switches a thread's network namespace
 * through this helper. Returns 0, or -1 with errno set. */
static inline int nftproxy_setns_net(int fd) {
    return (int)syscall(SYS_setns, fd, 0x40000000 /* CLONE_NEWNET */);
}

#endif
