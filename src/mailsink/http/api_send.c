/*
 * api_send.c - POST /api/v1/send: build a message from Mailpit's SendRequest and store it like an
 * SMTP one.
 */
#include "mailsink/http/internal.h"

void
api_send(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
}
