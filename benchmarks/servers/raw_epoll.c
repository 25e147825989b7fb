/* bench_raw_epoll: the reference echo peer. Plain C on epoll, no framework, one thread.
 *
 * Trigger mode: level-triggered. A short read means the socket is empty, so we return to
 * epoll_wait without the extra recv() edge triggering needs to see EAGAIN, and pausing a
 * connection is a plain interest change with no edge to lose.
 *
 * Memory: one 64 KiB read buffer shared by the whole loop. A connection owns heap memory only
 * while the kernel refuses part of an echo: then the remainder (at most one read) is copied out
 * and reading stops until it has been sent. An idle connection costs just its small struct.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)
#define STOP_GRACE_MS 5000

struct conn {
    int fd;
    uint32_t interest; /* what epoll watches now (EPOLLIN or EPOLLOUT) */
    char* out;         /* bytes the kernel has not taken yet: out[head, len) */
    size_t head, len;
    int peer_eof;
    int fin_sent;
    struct conn *prev, *next; /* every live connection, for the graceful stop */
};

static int ep = -1;
static int listen_fd = -1;
static int sig_fd = -1;
static struct conn* conns;
static size_t live;
static int stopping;
static long long accept_resume_at; /* nonzero while accepting is paused */
static char rbuf[READ_SIZE];

/* Sentinels stored in epoll_event.data.ptr for the non-connection descriptors. */
static char listener_tag, signal_tag;

static void die(const char* what) {
    perror(what);
    exit(1);
}

static void set_interest(struct conn* c, uint32_t ev) {
    if (c->interest == ev) return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) die("epoll_ctl mod");
    c->interest = ev;
}

static void conn_close(struct conn* c, int abortive) {
    if (abortive) {
        /* RST instead of FIN: used only when the stop deadline passes. */
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd); /* also removes it from the epoll set */
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->out);
    free(c);
    live--;
}

/* Sends what the kernel takes now; keeps the rest. Returns -1 if the connection died. */
static int send_some(struct conn* c, const char* p, size_t n) {
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1; /* EPIPE, ECONNRESET, ... */
        }
        p += k;
        n -= (size_t)k;
    }
    if (n > 0) {
        /* Reading is paused while anything is owed, so this never holds more than one read. */
        c->out = malloc(n);
        if (!c->out) die("malloc");
        memcpy(c->out, p, n);
        c->head = 0;
        c->len = n;
    }
    return 0;
}

/* Decides what to watch (and whether the connection is finished) after any progress.
 * Returns -1 if the connection was closed. */
static int settle(struct conn* c) {
    if (c->len > c->head) {
        set_interest(c, EPOLLOUT); /* owed output: stop reading until it drains */
        return 0;
    }
    if ((c->peer_eof || stopping) && !c->fin_sent) {
        shutdown(c->fd, SHUT_WR);
        c->fin_sent = 1;
    }
    if (c->peer_eof) {
        /* Both directions are done: nothing more can arrive, so close() sends no RST. */
        conn_close(c, 0);
        return -1;
    }
    set_interest(c, EPOLLIN);
    return 0;
}

/* --spin-ns N: burn N ns of CPU per read that returned data. Not part of the contract: a known
 * extra cost per message, for checking that the benchmark sees a difference of that size
 * (docs/benchmarks.md, "Can it see 10 %?"). */
static long spin_ns;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void spin(void) {
    long long until = now_ns() + spin_ns;
    while (now_ns() < until) {
    }
}

static void on_readable(struct conn* c) {
    for (int round = 0; round < 8; round++) {
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (n > 0 && spin_ns) spin();
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_close(c, 0);
            return;
        }
        if (n == 0) {
            c->peer_eof = 1;
            break;
        }
        if (!stopping) {
            if (send_some(c, rbuf, (size_t)n) < 0) {
                conn_close(c, 0);
                return;
            }
            if (c->len > c->head) break;
        }
        /* Once stopping, what arrives is drained and dropped; it does not pause reading. */
        if ((size_t)n < sizeof rbuf) break;
    }
    settle(c);
}

static void on_writable(struct conn* c) {
    while (c->head < c->len) {
        ssize_t k = send(c->fd, c->out + c->head, c->len - c->head, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_close(c, 0);
            return;
        }
        c->head += (size_t)k;
    }
    free(c->out);
    c->out = NULL;
    c->head = c->len = 0;
    settle(c);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_accept(void) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            /* EMFILE and friends (the benchmark should stay below the limit): a level-triggered
             * listener with a queued client stays readable, so stop watching it for a while
             * instead of spinning. The client waits in the backlog. */
            perror("accept4");
            epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL);
            accept_resume_at = now_ms() + 100;
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn* c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        c->interest = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl add");
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        live++;
    }
}

static void begin_stop(void) {
    stopping = 1;
    epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL); /* may fail if accepting was paused: fine */
    close(listen_fd);
    listen_fd = -1;
    for (struct conn *c = conns, *next; c; c = next) {
        next = c->next;
        settle(c); /* FIN now where nothing is owed; the rest send it once drained */
    }
}

static int parse_args(int argc, char** argv, const char** host, int* port) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            *port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
            *host = argv[++i];
        else if (strcmp(argv[i], "--spin-ns") == 0 && i + 1 < argc)
            spin_ns = atol(argv[++i]);
        else
            return -1;
    }
    return 0;
}

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    int port = 0;
    if (parse_args(argc, argv, &host, &port) < 0) {
        fprintf(stderr, "usage: %s [--host H] [--port N] [--spin-ns N]\n", argv[0]);
        return 2;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) die("socket");
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", host);
        return 2;
    }
    if (bind(listen_fd, (struct sockaddr*)&sa, sizeof sa) < 0) die("bind");
    if (listen(listen_fd, INT_MAX) < 0) die("listen"); /* the kernel clamps to somaxconn */
    socklen_t sl = sizeof sa;
    getsockname(listen_fd, (struct sockaddr*)&sa, &sl);

    /* Signals arrive as readable data on the loop, so the stop runs as an ordinary event. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0) die("signalfd");

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &listener_tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &e) < 0) die("epoll_ctl listener");
    e.data.ptr = &signal_tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &e) < 0) die("epoll_ctl signalfd");

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    struct epoll_event evs[256];
    long long stop_deadline = 0;
    while (!stopping || live > 0) {
        int timeout = -1;
        if (stopping) {
            long long left = stop_deadline - now_ms();
            if (left <= 0) {
                fprintf(stderr, "stop deadline: aborting %zu connections\n", live);
                while (conns)
                    conn_close(conns, 1);
                break;
            }
            timeout = (int)left;
        } else if (accept_resume_at) {
            long long left = accept_resume_at - now_ms();
            if (left <= 0) {
                struct epoll_event le = {.events = EPOLLIN, .data.ptr = &listener_tag};
                epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &le);
                accept_resume_at = 0;
            } else {
                timeout = (int)left;
            }
        }
        int n = epoll_wait(ep, evs, 256, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void* p = evs[i].data.ptr;
            uint32_t ev = evs[i].events;
            if (p == &listener_tag) {
                if (!stopping) on_accept();
            } else if (p == &signal_tag) {
                struct signalfd_siginfo si;
                while (read(sig_fd, &si, sizeof si) == sizeof si) {
                }
                if (!stopping) {
                    stop_deadline = now_ms() + STOP_GRACE_MS;
                    begin_stop();
                    /* The batch may still name connections begin_stop() closed. */
                    break;
                }
            } else {
                struct conn* c = p;
                if (ev & EPOLLERR) {
                    conn_close(c, 0);
                } else if (c->interest == EPOLLOUT) {
                    on_writable(c);
                } else {
                    on_readable(c); /* EPOLLIN or EPOLLHUP: recv tells EOF or the error */
                }
            }
        }
    }
    close(ep);
    close(sig_fd);
    return 0;
}
