/*
 * devcluster's stand-in for a pod's network namespace, for binds.
 *
 * Pods run as local processes sharing this machine's ports. A server that
 * listens on every address (0.0.0.0 or ::, as servers in containers do) would
 * take its port on every loopback address: other pods and the Services'
 * cluster IPs could no longer use it. Loaded into pod processes with
 * LD_PRELOAD (devcluster.kubelet.podbind), this bind() puts such a socket on
 * the pod's own address instead ($DEVCLUSTER_POD_IP; :: becomes the
 * IPv4-mapped pod address, or for an IPv6-only socket the same port on ::1),
 * which is what "every address" means inside a pod's network namespace.
 * Every other bind is left as it is.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static bind_fn real_bind;
    if (!real_bind)
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    const char *ip = getenv("DEVCLUSTER_POD_IP");
    if (ip && *ip && addr) {
        if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in in4;
            memcpy(&in4, addr, sizeof in4);
            if (in4.sin_addr.s_addr == htonl(INADDR_ANY)
                && inet_pton(AF_INET, ip, &in4.sin_addr) == 1)
                return real_bind(fd, (const struct sockaddr *)&in4, sizeof in4);
        } else if (addr->sa_family == AF_INET6
                   && len >= sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 in6;
            char mapped[64];
            int v6only = 0;
            socklen_t size = sizeof v6only;
            memcpy(&in6, addr, sizeof in6);
            if (!IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr))
                return real_bind(fd, addr, len);
            getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &size);
            if (v6only) {
                /* IPv6 only (a server that also opens an IPv4 socket, as
                 * tornado does): pods have no IPv6 address of their own here,
                 * so this one goes to ::1, where no one connects to it. In a
                 * pod both sockets have the port asked for, and servers check
                 * that (dask-gateway's scheduler asserts a single port), so
                 * ::1 gets that port, shared (SO_REUSEPORT) with other pods'
                 * sockets of the same uid there; only a socket of another
                 * uid holding it makes this one take an unused port. */
                int one = 1;
                in6.sin6_addr = in6addr_loopback;
                if (in6.sin6_port != 0)
                    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
                int done = real_bind(fd, (const struct sockaddr *)&in6, sizeof in6);
                if (done == 0 || errno != EADDRINUSE || in6.sin6_port == 0)
                    return done;
                in6.sin6_port = 0;
                return real_bind(fd, (const struct sockaddr *)&in6, sizeof in6);
            }
            snprintf(mapped, sizeof mapped, "::ffff:%s", ip);
            if (inet_pton(AF_INET6, mapped, &in6.sin6_addr) == 1)
                return real_bind(fd, (const struct sockaddr *)&in6, sizeof in6);
        }
    }
    return real_bind(fd, addr, len);
}
