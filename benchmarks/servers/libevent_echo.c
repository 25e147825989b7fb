/* bench_libevent: the echo peer on libevent 2.1's low-level event API (evconnlistener for
 * accepting, one struct event per connection, evsignal/evtimer for the stop).
 *
 * Why not bufferevent: a bufferevent always queues output in its evbuffer and writes it on a later
 * loop iteration, so "send now, buffer only what the kernel refuses, stop reading meanwhile"
 * could not be expressed without an extra loop turn per echo. Raw events keep the behaviour
 * identical to the other peers; libevent's epoll backend is level-triggered here (no EV_ET).
 *
 * Memory: one 64 KiB read buffer shared by the loop; a connection holds heap output only while
 * the kernel refuses part of an echo (at most one read, reading paused), plus its struct event.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)

struct conn {
    evutil_socket_t fd;
    struct event* ev;
    short watching; /* EV_READ or EV_WRITE */
    char* out;      /* bytes the kernel has not taken yet: out[head, len) */
    size_t head, len;
    int peer_eof;
    int fin_sent;
    struct conn *prev, *next;
};

static struct event_base* base;
static struct evconnlistener* listener;
static struct event *sig_term, *sig_int, *stop_timer, *accept_retry;
static struct conn* conns;
static size_t live;
static int stopping;
static char rbuf[READ_SIZE];

static void on_conn_event(evutil_socket_t fd, short what, void* arg);

static void conn_close(struct conn* c, int abortive) {
    if (abortive) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    event_free(c->ev);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->out);
    free(c);
    /* With nothing left pending, event_base_dispatch() returns and main exits. */
    if (--live == 0 && stopping) event_del(stop_timer);
}

static void watch(struct conn* c, short what) {
    if (c->watching == what) return;
    event_del(c->ev);
    event_assign(c->ev, base, c->fd, what | EV_PERSIST, on_conn_event, c);
    event_add(c->ev, NULL);
    c->watching = what;
}

/* Chooses what to watch next, or ends the connection. Returns -1 if it was closed. */
static int settle(struct conn* c) {
    if (c->len > c->head) {
        watch(c, EV_WRITE); /* owed output: stop reading until it drains */
        return 0;
    }
    if ((c->peer_eof || stopping) && !c->fin_sent) {
        shutdown(c->fd, SHUT_WR);
        c->fin_sent = 1;
    }
    if (c->peer_eof) {
        conn_close(c, 0);
        return -1;
    }
    watch(c, EV_READ);
    return 0;
}

static int send_some(struct conn* c, const char* p, size_t n) {
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    if (n > 0) {
        c->out = malloc(n);
        if (!c->out) abort();
        memcpy(c->out, p, n);
        c->head = 0;
        c->len = n;
    }
    return 0;
}

static void on_readable(struct conn* c) {
    for (int round = 0; round < 8; round++) {
        ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
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

static void on_conn_event(evutil_socket_t fd, short what, void* arg) {
    (void)fd;
    struct conn* c = arg;
    if (what & EV_WRITE)
        on_writable(c);
    else
        on_readable(c);
}

static void on_accept(struct evconnlistener* l, evutil_socket_t fd, struct sockaddr* sa, int len,
                      void* arg) {
    (void)l, (void)sa, (void)len, (void)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn* c = calloc(1, sizeof *c);
    if (!c) abort();
    c->fd = fd;
    c->watching = EV_READ;
    c->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_conn_event, c);
    if (!c->ev) abort();
    event_add(c->ev, NULL);
    c->next = conns;
    if (conns) conns->prev = c;
    conns = c;
    live++;
}

/* EMFILE and friends (the benchmark should stay below the limit): the listener would stay
 * readable and spin, so stop accepting for 100 ms; clients wait in the backlog meanwhile. */
static void on_accept_error(struct evconnlistener* l, void* arg) {
    (void)arg;
    perror("accept");
    evconnlistener_disable(l);
    struct timeval pause = {0, 100 * 1000};
    evtimer_add(accept_retry, &pause);
}

static void on_accept_retry(evutil_socket_t fd, short what, void* arg) {
    (void)fd, (void)what, (void)arg;
    if (listener) evconnlistener_enable(listener);
}

static void on_deadline(evutil_socket_t fd, short what, void* arg) {
    (void)fd, (void)what, (void)arg;
    fprintf(stderr, "stop deadline: aborting %zu connections\n", live);
    while (conns)
        conn_close(conns, 1);
}

static void on_signal(evutil_socket_t sig, short what, void* arg) {
    (void)sig, (void)what, (void)arg;
    if (stopping) return;
    stopping = 1;
    evconnlistener_free(listener); /* closes the listening socket */
    event_del(accept_retry);
    listener = NULL;
    event_del(sig_term);
    event_del(sig_int);
    struct timeval grace = {5, 0};
    evtimer_add(stop_timer, &grace);
    for (struct conn *c = conns, *next; c; c = next) {
        next = c->next;
        settle(c);
    }
    if (live == 0) event_del(stop_timer);
}

int main(int argc, char** argv) {
    const char* host = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--host H] [--port N]\n", argv[0]);
            return 2;
        }
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    base = event_base_new();
    if (!base) return 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", host);
        return 2;
    }
    listener = evconnlistener_new_bind(
        base, on_accept, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        INT_MAX, (struct sockaddr*)&sa, sizeof sa);
    if (!listener) {
        perror("listen");
        return 1;
    }
    socklen_t sl = sizeof sa;
    getsockname(evconnlistener_get_fd(listener), (struct sockaddr*)&sa, &sl);

    sig_term = evsignal_new(base, SIGTERM, on_signal, NULL);
    sig_int = evsignal_new(base, SIGINT, on_signal, NULL);
    stop_timer = evtimer_new(base, on_deadline, NULL);
    accept_retry = evtimer_new(base, on_accept_retry, NULL);
    evconnlistener_set_error_cb(listener, on_accept_error);
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    event_base_dispatch(base);

    event_free(sig_term);
    event_free(sig_int);
    event_free(stop_timer);
    event_free(accept_retry);
    event_base_free(base);
    return 0;
}
