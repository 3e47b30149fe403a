/*
 * api_json.c - the JSON the handlers share: Mailpit's MessageSummary for a stored row and
 * the resolution of the "latest" id.
 */
#include "mailsink/http/internal.h"

json_t *
api_summary_json(const store_row *row)
{
    (void)row; /* not written yet */
    return NULL;
}

char *
api_resolve_id(http_req *r)
{
    /* not written yet */
    evhttp_send_error(r->req, 501, "not implemented");
    return NULL;
}
