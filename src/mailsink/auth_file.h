/*
 * auth_file.h - the users of --auth-file, and checking what a client presents with AUTH
 * against them.
 *
 * The file holds one "user:password" per line. The user is everything before the first
 * ':' (case-sensitive, never empty); the password is the rest of the line exactly (a
 * trailing CR LF or LF is not part of it; spaces are). The password may name its
 * scheme:
 *   user:secret               plain (any mechanism: PLAIN, LOGIN, CRAM-MD5)
 *   user:{PLAIN}{odd}secret   plain, for a password that itself starts with "{...}"
 *   user:{SHA256}<64 hex>     SHA-256 of the password, hex in either case; PLAIN and
 *                             LOGIN only (CRAM-MD5 needs the password itself)
 * Blank lines and lines whose first non-blank character is '#' are skipped. Any other
 * "{SCHEME}" is refused at load time, as are a duplicate user and a file without users.
 *
 * Loaded once by main before the server starts; afterwards read-only, so the server's
 * thread may call auth_file_check while main does something else.
 */
#ifndef MAILSINK_AUTH_FILE_H
#define MAILSINK_AUTH_FILE_H

#include <smtpd.h>

#include <stddef.h>

typedef struct auth_file auth_file;

/* Read and check the whole file. NULL with one line in err naming the file and the line
   ("--auth-file /x: line 3: expected user:password"); a password is never quoted. */
auth_file *auth_file_load(const char *path, char *err, size_t errsize);

/* Wipes the passwords and frees. NULL does nothing. */
void auth_file_free(auth_file *af);

/* The number of users, for the start-up log line. */
size_t auth_file_count(const auth_file *af);

/*
 * From an on_auth hook: 1 when auth's user is in the file and proved its password, else
 * 0. Plain entries go through smtpd_auth_check_password (PLAIN, LOGIN and CRAM-MD5);
 * {SHA256} entries compare the SHA-256 of auth->password in constant time, so CRAM-MD5
 * (no password) fails for them. A PLAIN authorization identity other than the user
 * fails (nobody may act for someone else). An unknown user costs the same work as a
 * known one.
 */
int auth_file_check(const auth_file *af, smtpd_session *s, const smtpd_auth *auth);

/*
 * Outside SMTP (HTTP basic auth): 1 when user is in the file and password is its
 * password (plain or {SHA256} entries alike), else 0. The comparison is of SHA-256
 * digests in constant time, so neither the length nor the content of the stored
 * password shows in the time taken; an unknown user costs the same work. Any thread.
 */
int auth_file_check_password(const auth_file *af, const char *user, const char *password);

#endif
