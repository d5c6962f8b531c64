/* cluster_view.c: the entries of GET /cluster, their order and total, as JSON and HTML. */
#include "cluster_view.h"

#include "respond.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cluster_view_init(struct cluster_view *v, size_t max, const char *pod, uint64_t visits)
{
    memset(v, 0, sizeof(*v));
    if ((v->e = calloc(max + 1, sizeof(*v->e))) == NULL)
        return -ENOMEM;
    v->e[0].pod = pod;
    v->e[0].visits = visits;
    v->n = 1;
    return 0;
}

void cluster_view_answer(struct cluster_view *v, const char *pod, uint64_t visits,
                         const char *address)
{
    size_t j = 0;
    while (j < v->n && !(v->e[j].error == NULL && strcmp(v->e[j].pod, pod) == 0))
        j++;
    if (j == 0)
        return; /* this server itself, under another address: counted from memory */
    if (j < v->n) {
        if (visits > v->e[j].visits)
            v->e[j].visits = visits;
        return;
    }
    v->e[v->n].pod = pod;
    v->e[v->n].address = address;
    v->e[v->n++].visits = visits;
}

void cluster_view_error(struct cluster_view *v, const char *address, const char *error)
{
    v->e[v->n].address = address;
    v->e[v->n++].error = error;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct cluster_entry *x = a, *y = b;
    if ((x->error == NULL) != (y->error == NULL))
        return x->error == NULL ? -1 : 1; /* pods that answered first */
    if (x->pod != NULL && y->pod != NULL) {
        int c = strcmp(x->pod, y->pod);
        if (c != 0)
            return c;
    } else if ((x->pod == NULL) != (y->pod == NULL)) {
        return x->pod != NULL ? -1 : 1;
    }
    return strcmp(x->address != NULL ? x->address : "", y->address != NULL ? y->address : "");
}

void cluster_view_finish(struct cluster_view *v)
{
    qsort(v->e, v->n, sizeof(*v->e), entry_cmp);
    v->total = 0;
    v->complete = 1;
    for (size_t i = 0; i < v->n; i++) {
        struct cluster_entry *e = &v->e[i];
        if (e->error == NULL && e->visits > UINT64_MAX - v->total) {
            snprintf(e->overflow, sizeof(e->overflow), "its count %llu would overflow the total",
                     (unsigned long long)e->visits);
            e->error = e->overflow;
        }
        if (e->error != NULL)
            v->complete = 0;
        else
            v->total += e->visits;
    }
}

void cluster_view_free(struct cluster_view *v)
{
    free(v->e);
    v->e = NULL;
}

void cluster_view_json(struct strbuf *sb, const struct cluster_view *v)
{
    const struct cluster_entry *e = v->e;
    size_t n = v->n;
    strbuf_puts(sb, "{\"total\":");
    strbuf_u64(sb, v->total);
    strbuf_puts(sb,
                v->complete ? ",\"complete\":true,\"pods\":[" : ",\"complete\":false,\"pods\":[");
    for (size_t i = 0; i < n; i++) {
        strbuf_puts(sb, i == 0 ? "{\"pod\":\"" : ",{\"pod\":\"");
        if (e[i].pod != NULL)
            strbuf_json(sb, e[i].pod, strlen(e[i].pod));
        else
            strbuf_puts(sb, "?");
        if (e[i].error == NULL) {
            strbuf_puts(sb, "\",\"visits\":");
            strbuf_u64(sb, e[i].visits);
            strbuf_puts(sb, ",\"ok\":true}");
        } else {
            strbuf_puts(sb, "\",\"address\":\"");
            strbuf_json(sb, e[i].address, strlen(e[i].address));
            strbuf_puts(sb, "\",\"ok\":false,\"error\":\"");
            strbuf_json(sb, e[i].error, strlen(e[i].error));
            strbuf_puts(sb, "\"}");
        }
    }
    strbuf_puts(sb, "]}\n");
}

static void html_text(struct strbuf *sb, const char *s)
{
    strbuf_html(sb, s, strlen(s));
}

void cluster_view_html(struct strbuf *sb, const struct cluster_view *v, const char *asked)
{
    const struct cluster_entry *e = v->e;
    size_t n = v->n;
    uint64_t total = v->total;
    int complete = v->complete;
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += e[i].error != NULL;
    respond_page_head(sb, "Cluster: ", total, " visits");
    strbuf_puts(sb, "<h1>Cluster total: ");
    strbuf_u64(sb, total);
    strbuf_puts(sb, " visits</h1>\n<p>");
    strbuf_u64(sb, n - failed);
    strbuf_puts(sb, n - failed == 1 ? " pod answered" : " pods answered");
    if (complete) {
        strbuf_puts(sb, "; the total is complete.");
    } else {
        strbuf_puts(sb, "; <strong>incomplete</strong>: ");
        strbuf_u64(sb, failed);
        strbuf_puts(sb, failed == 1 ? " peer did not answer." : " peers did not answer.");
    }
    strbuf_puts(sb, " Asked by pod <strong>");
    html_text(sb, asked);
    strbuf_puts(sb, "</strong>.</p>\n<table>\n<thead><tr><th>Pod</th><th>Visits</th>"
                    "<th>Status</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < n; i++) {
        strbuf_puts(sb, "<tr><td>");
        if (e[i].error == NULL) {
            html_text(sb, e[i].pod);
            strbuf_puts(sb, "</td><td>");
            strbuf_u64(sb, e[i].visits);
            strbuf_puts(sb, "</td><td>ok</td></tr>\n");
        } else {
            strbuf_puts(sb, "? (");
            html_text(sb, e[i].address);
            strbuf_puts(sb, ")</td><td></td><td>error: ");
            html_text(sb, e[i].error);
            strbuf_puts(sb, "</td></tr>\n");
        }
    }
    strbuf_puts(sb, "</tbody>\n<tfoot><tr><th>Total</th><th>");
    strbuf_u64(sb, total);
    strbuf_puts(sb, complete ? "</th><th>complete</th></tr></tfoot>\n"
                             : "</th><th>incomplete</th></tr></tfoot>\n");
    strbuf_puts(sb, "</table>\n<p><a href=\"/cluster\">Refresh</a> &middot; "
                    "<a href=\"/\">Visit</a> (counts one visit on the pod that serves it)</p>\n"
                    "</body>\n</html>\n");
}
