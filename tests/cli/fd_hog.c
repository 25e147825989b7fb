/* fd_hog: a server at its descriptor limit, for the tests of `orderly doctor`.
 * Usage: fd_hog LIMIT. Lowers RLIMIT_NOFILE to LIMIT, listens on 127.0.0.1:0 with a backlog of 4
 * and prints "port N"; accepts until accept() fails with EMFILE, prints "full N" (N accepted) and
 * then waits without reading, closing or accepting anything: the clients that come later wait in
 * the backlog or are dropped. Exits after 60 s at the latest. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fd_hog LIMIT\n");
        return 2;
    }
    struct rlimit rl;
    rl.rlim_cur = (rlim_t)strtoul(argv[1], NULL, 10);
    rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        return 1;
    }
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (l < 0 || bind(l, (struct sockaddr*)&sin, sizeof sin) != 0 || listen(l, 4) != 0 ||
        getsockname(l, (struct sockaddr*)&sin, &len) != 0) {
        perror("listen");
        return 1;
    }
    printf("port %u\n", (unsigned)ntohs(sin.sin_port));
    fflush(stdout);
    unsigned accepted = 0;
    struct pollfd p = {l, POLLIN, 0};
    while (poll(&p, 1, 60000) == 1) {
        int c = accept(l, NULL, NULL);
        if (c >= 0) {
            ++accepted;
            continue;
        }
        if (errno == EMFILE) break;
        if (errno != EINTR && errno != ECONNABORTED) {
            perror("accept");
            return 1;
        }
    }
    printf("full %u\n", accepted);
    fflush(stdout);
    sleep(60);
    return 0;
}
