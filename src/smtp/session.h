/*
 * session.h - one SMTP session, sans I/O: bytes and time in, replies and hook calls out.
 *
 * The I/O layer (src/net) creates a session per connection, calls session_start, feeds
 * it the bytes it reads (session_feed), writes whatever session_output holds, and closes
 * the connection once session_is_closing and the output is written. Time enters as
 * "now" on each call and as session_timeout when the I/O layer's timer fires; the
 * session never reads a clock. A hook answering PENDING blocks the session
 * (session_is_blocked) until session_complete. Tests and fuzzers drive it directly.
 *
 * Ownership: the session owns its transaction, buffers and copies of every string. The
 * environment (options, hooks) is borrowed and must outlive it. One thread at a time.
 */
#ifndef SMTP_SESSION_H
#define SMTP_SESSION_H

#include "core/buf.h"
#include "smtp/body.h"

#include <smtpd.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* What every session of one server shares: read-only after start, but the id counter. */
typedef struct session_env {
    const smtpd_options *opts; /* resolved: hostname and banner never NULL */
    const smtpd_hooks *hooks;
    void *user;
    smtpd_server *server;
    char id_prefix[8];            /* random per server, so ids differ across restarts */
    bool tls_available;           /* a TLS context exists: STARTTLS may be offered */
    _Atomic uint64_t next_msg_id; /* message ids within this server */
    _Atomic size_t buffered;      /* message octets all sessions hold (max-buffered-data) */
} session_env;

typedef enum session_state {
    SESSION_CONNECTING = 0, /* on_connect not answered yet; no greeting sent */
    SESSION_COMMAND,        /* reading commands */
    SESSION_DATA,           /* reading message content */
    SESSION_DENIED,         /* the host was refused: only QUIT (seed behaviour) */
    SESSION_CLOSING         /* 221 or 421 sent; nothing more is read */
} session_state;

const char *session_state_str(session_state st);

/* Which hook a PENDING answer belongs to. */
typedef enum session_wait {
    WAIT_NONE = 0,
    WAIT_CONNECT,
    WAIT_HELO,
    WAIT_MAIL,
    WAIT_RCPT,
    WAIT_DATA,
    WAIT_DELIVER,
    WAIT_AUTH,
    WAIT_TLS
} session_wait;

/* Where an AUTH exchange stands (RFC 4954 4). */
typedef enum sasl_stage {
    SASL_NONE = 0,
    SASL_PLAIN,      /* sent "334 ", waiting for the PLAIN response */
    SASL_LOGIN_USER, /* sent "334 VXNlcm5hbWU6" (Username:) */
    SASL_LOGIN_PASS, /* sent "334 UGFzc3dvcmQ6" (Password:) */
    SASL_CRAM        /* sent the CRAM-MD5 challenge */
} sasl_stage;

typedef struct session_sasl {
    sasl_stage stage;
    char mech[16];
    char challenge[160]; /* CRAM-MD5: the challenge we sent, decoded */
    char *authzid;
    char *user;
    char *password;    /* PLAIN/LOGIN; wiped before it is freed */
    char *cram_digest; /* CRAM-MD5: the client's hex digest */
    bool malformed;    /* a NUL inside a user or password (RFC 4616 SAFE): refused
                          without asking the hook, once the exchange is complete */
} session_sasl;

/* The envelope of the current mail transaction. */
typedef struct session_tx {
    bool active; /* MAIL accepted */
    char *sender;
    char **rcpts;
    size_t nrcpts;
    bool body_8bitmime;
    bool smtputf8;
    char id[32]; /* assigned at DATA */
    size_t trace_size;
    unsigned findings; /* findings of this message */
} session_tx;

/* A reply a hook set with smtpd_session_set_reply or smtpd_server_complete. */
typedef struct session_hook_reply {
    int code; /* 0: none set */
    char enhanced[16];
    char *text;
} session_hook_reply;

/* A MAIL/RCPT/HELO argument kept while its hook is pending. */
typedef struct session_candidate {
    char *value;
    bool esmtp;    /* HELO vs EHLO */
    bool body8;    /* MAIL BODY=8BITMIME */
    bool smtputf8; /* MAIL SMTPUTF8 */
} session_candidate;

struct smtpd_session {
    session_env *env; /* borrowed; shared by the server's sessions */
    uint64_t id;
    char client_addr[64];
    int client_port;
    void *user_data;

    session_state state;
    bool connected; /* on_connect was called, so on_close will be */
    char *helo;     /* NULL until HELO/EHLO accepted */
    bool esmtp;
    session_tx tx;
    unsigned findings; /* session-wide findings */
    unsigned errors;
    unsigned junk;
    time_t now;

    /* command line assembly */
    buf line;
    bool line_overflow;
    bool line_nomem; /* growing the line failed: the command gets 451, not "too long" */
    bool line_bad_char;
    bool line_last_cr;
    bool group_ended; /* a command that must end a pipelined group was just run */

    /* DATA */
    body body;
    buf msg; /* trace headers + content, capped at max-message-size + trace */
    bool msg_too_big;
    bool msg_nomem;       /* out of memory or over max-buffered-data: 452 at the end */
    size_t msg_budgeted;  /* octets of msg counted in env->buffered */
    size_t msg_size_hint; /* the size of this session's last message: allocated at once
                             for the next (a client sending many alike pays no regrowth) */
    bool chunk_failed;
    int chunk_verdict;

    buf out; /* replies not yet written */

    /* hooks and pending answers */
    bool in_hook;
    session_wait waiting;
    uint64_t wait_seq;
    uint64_t seq_counter;
    uint64_t waits; /* new waits for the client: lines taken, state changes */
    session_hook_reply hook_reply;
    session_candidate cand;

    /* TLS (the I/O layer does the handshake; the session only knows the outcome) */
    bool tls;           /* the connection is encrypted */
    bool tls_requested; /* STARTTLS answered 220: stop reading until the handshake */
    char *tls_version;
    char *tls_cipher;
    char *tls_peer;
    /* AUTH */
    char *auth_user;
    session_sasl sasl;
};

/* Create a session for a client; NULL when out of memory. */
smtpd_session *session_new(session_env *env, uint64_t id, const char *client_addr, int client_port);
/* Free it; calls on_reset for an open transaction and on_close. NULL does nothing. */
void session_free(smtpd_session *s);

/* Run on_connect and queue the greeting (or the refusal). */
void session_start(smtpd_session *s, time_t now);

/* Refuse the client without asking on_connect (too many sessions): 421 and closing. */
void session_refuse_busy(smtpd_session *s);
/* The same for a client address over max-sessions-per-ip. */
void session_refuse_peer(smtpd_session *s);

/* Feed client bytes; returns how many were consumed. Stops early while blocked on a
   pending hook or once closing; the caller keeps the rest and feeds it again later. */
size_t session_feed(smtpd_session *s, const char *data, size_t len, time_t now);

/* The client closed its side. */
void session_eof(smtpd_session *s);

/* The current wait timed out: 421 4.4.2 and closing. */
void session_timeout(smtpd_session *s);

/* The server is stopping and the grace period is over: 421 4.3.2 and closing. */
void session_shutdown(smtpd_session *s);

/* Complete a pending hook (called on the session's thread). Returns SMTPD_ENOENT if
   seq does not name the pending answer. */
int session_complete(smtpd_session *s, uint64_t seq, smtpd_verdict v, int code,
                     const char *enhanced, const char *text, time_t now);

bool session_is_blocked(const smtpd_session *s); /* waiting for a hook */
bool session_is_closing(const smtpd_session *s);
bool session_in_data(const smtpd_session *s);
/* Part of a command line has arrived, not yet its end. */
bool session_line_started(const smtpd_session *s);
/* Counts the waits for client input that began (a line was taken, the state changed):
   the I/O layer starts a new deadline when it moved. */
uint64_t session_wait_count(const smtpd_session *s);

/* Message content held in memory, counted against max-buffered-data across the server:
   take len octets (false when they would pass it). */
bool session_msg_budget_take(smtpd_session *s, size_t len);
/* Octets of the budget no session holds now. */
size_t session_msg_budget_free(const smtpd_session *s);
/* DATA is refused with 452 while less than this is free: 64 KiB, or the whole budget
   when that is smaller (so one message alone is always taken). */
size_t session_msg_budget_reserve(const smtpd_session *s);
/* Free the message buffer and give its octets back to the budget. */
void session_msg_release(smtpd_session *s);
/* The timeout that applies now, in ms (command or data). */
unsigned session_timeout_ms(const smtpd_session *s);
/* Replies waiting to be written; the caller removes what it wrote with buf_consume. */
buf *session_output(smtpd_session *s);

/* --- for commands.c --- */

/* Queue a reply (the one reply path: enhanced codes, transcripts, 421 closes). */
void session_reply(smtpd_session *s, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A client protocol error: the reply, then 421 once max-errors is reached. */
void session_error(smtpd_session *s, int code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reset the transaction (after the final dot, RSET, a new EHLO). */
void session_tx_reset(smtpd_session *s);
void session_set_state(smtpd_session *s, session_state st);
/* Bracket a hook call: begin clears the hook's reply and prepares the ticket; end
   returns true when the hook answered PENDING (the session then waits). */
void session_hook_begin(smtpd_session *s, session_wait kind);
bool session_hook_end(smtpd_session *s, smtpd_verdict v);
void session_log(smtpd_session *s, smtpd_log_dir dir, const char *line, size_t len);

/*
 * Send the reply for a hook verdict: the hook's own reply when it set one, else the
 * default for the verdict (ok_* for ACCEPT, rej_* for REJECT). Returns the code sent.
 */
int session_verdict_reply(smtpd_session *s, smtpd_verdict v, int ok_code, const char *ok_enh,
                          const char *ok_text, int rej_code, const char *rej_enh,
                          const char *rej_text);

/* The I/O layer finished a TLS handshake: forget everything the client said before
   (RFC 3207 4.2), note the TLS facts and ask on_tls. Strings are copied. */
void session_tls_done(smtpd_session *s, const char *version, const char *cipher, const char *peer);
/* STARTTLS was answered with 220: the I/O layer must now drop buffered input, write the
   output and start the handshake. */
bool session_tls_requested(const smtpd_session *s);

/* sasl.c: AUTH (RFC 4954) */
void sasl_start(smtpd_session *s, const char *args);
void sasl_input(smtpd_session *s, const char *line, size_t len);
void sasl_finish(smtpd_session *s, smtpd_verdict v);
void sasl_reset(smtpd_session *s);
/* Is AUTH offered now (hook set, and TLS active or insecure AUTH allowed)? */
bool sasl_is_offered(const smtpd_session *s);
/* The enabled mechanisms, space-separated, for EHLO. */
void sasl_mech_list(const smtpd_session *s, char *out, size_t size);

/* commands.c: run one complete command line (without CRLF). */
void commands_run(smtpd_session *s, const char *line, size_t len);
/* commands.c: finish a command whose hook answered (now or later). */
void commands_finish(smtpd_session *s, session_wait kind, smtpd_verdict v);
/* commands.c: the message content ended (CRLF.CRLF). */
void commands_end_of_data(smtpd_session *s);

/* ehlo.c: queue the EHLO reply with our capabilities. */
/* The EHLO reply (250 and the extensions); false when out of memory (451 sent). */
bool ehlo_reply(smtpd_session *s);

#endif
