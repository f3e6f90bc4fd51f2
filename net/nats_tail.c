// SPDX-License-Identifier: GPL-2.0
/*
 * lifemon --nats-tail (see nats_tail.h). An ordered push consumer from a start sequence:
 * nats.c recreates it by itself after a gap or a reconnect, and nothing is left on the
 * server when the process ends.
 */
#include "net/nats_tail.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#define LM_TAIL_WAIT_MS 5000	/* a message known to be pending comes within this */
#define LM_TAIL_SUB_TRIES 20	/* a consumer is asked for this often ... */
#define LM_TAIL_SUB_WAIT_MS 500	/* ... this far apart, while the cluster cannot place it */

/* Says what failed: nats.c's last error text when it is this failure's, else the status's. */
static void lm_tail_err(const char *what, natsStatus s, jsErrCode jerr)
{
	natsStatus last = NATS_OK;
	const char *text = nats_GetLastError(&last);

	if (!text || !*text || last != s)
		text = natsStatus_GetText(s);
	if (jerr)
		fprintf(stderr, "lifemon: nats-tail: %s: %s (JetStream error %d)\n", what, text,
			(int)jerr);
	else
		fprintf(stderr, "lifemon: nats-tail: %s: %s\n", what, text);
}

/* A failure a cluster electing a leader or catching up gives, which passes by itself. */
static bool lm_tail_transient(natsStatus s, jsErrCode jerr)
{
	return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || jerr == JSClusterNotAvailErr ||
	       jerr == JSClusterNotLeaderErr;
}

static natsStatus lm_tail_conn_opts(const struct lm_nats_tail_opts *o, natsOptions **out)
{
	const char *servers[32];
	char *urls = strdup(o->nats.urls), *p, *save = NULL;
	natsOptions *no = NULL;
	natsStatus s;
	int cnt = 0;

	if (!urls)
		return NATS_NO_MEMORY;
	for (p = strtok_r(urls, ",", &save); p && cnt < 32; p = strtok_r(NULL, ",", &save))
		servers[cnt++] = p;
	s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = natsOptions_SetServers(no, servers, cnt);
	if (s == NATS_OK)
		s = natsOptions_SetName(no, "lifemon --nats-tail");
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(no, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(no, o->follow ? -1 : 20);
	if (s == NATS_OK && o->nats.token)
		s = natsOptions_SetToken(no, o->nats.token);
	if (s == NATS_OK && o->nats.creds_file)
		s = natsOptions_SetUserCredentialsFromFiles(no, o->nats.creds_file, NULL);
	if (s == NATS_OK && (o->nats.tls_ca || o->nats.tls_cert))
		s = natsOptions_SetSecure(no, true);
	if (s == NATS_OK && o->nats.tls_ca)
		s = natsOptions_LoadCATrustedCertificates(no, o->nats.tls_ca);
	if (s == NATS_OK && o->nats.tls_cert)
		s = natsOptions_LoadCertificatesChain(no, o->nats.tls_cert, o->nats.tls_key);
	free(urls);
	if (s != NATS_OK) {
		natsOptions_Destroy(no);
		return s;
	}
	*out = no;
	return NATS_OK;
}

/* Whether the message passes --tail-since and --tail-instance. */
static bool lm_tail_wanted(const struct lm_nats_tail_opts *o, natsMsg *msg)
{
	const char *v = NULL;

	if (o->instance && (natsMsgHeader_Get(msg, "Lifemon-Instance", &v) != NATS_OK ||
			    strcmp(v, o->instance)))
		return false;
	if (o->since && (natsMsgHeader_Get(msg, "Lifemon-Seq", &v) != NATS_OK ||
			 strtoull(v, NULL, 10) < o->since))
		return false;
	return true;
}

int lm_nats_tail(const struct lm_nats_tail_opts *o)
{
	const char *stream = o->nats.stream ? o->nats.stream : LM_NATS_DEFAULT_STREAM;
	uint64_t printed = 0, first = 0, last = 0, pending = 1, end = 0;
	natsOptions *no = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsConsumerInfo *ci = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	char *subject = NULL;
	natsStatus s;
	int err = 0, tries;

	s = lm_tail_conn_opts(o, &no);
	if (s != NATS_OK) {
		lm_tail_err("options", s, 0);
		return -EINVAL;
	}
	s = natsConnection_Connect(&nc, no);
	if (s != NATS_OK) {
		fprintf(stderr, "lifemon: nats-tail: cannot connect to %s: %s\n", o->nats.urls,
			nats_GetLastError(NULL));
		err = -ECONNREFUSED;
		goto out;
	}
	s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
	if (s != NATS_OK) {
		if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
			fprintf(stderr, "lifemon: nats-tail: no stream %s\n", stream);
			err = -ENOENT;
		} else {
			lm_tail_err("stream info", s, jerr);
			err = -EIO;
		}
		goto out;
	}
	if (o->nats.subject) {
		subject = strdup(o->nats.subject);
	} else if (si->Config->SubjectsLen == 1) {
		subject = strdup(si->Config->Subjects[0]);
	} else {
		fprintf(stderr, "lifemon: nats-tail: stream %s has %d subjects: pick one with "
			"--nats-subject\n", stream, si->Config->SubjectsLen);
		err = -EINVAL;
		goto out;
	}
	if (!subject) {
		err = -ENOMEM;
		goto out;
	}
	/*
	 * When every message of the stream is ours to print, its leader's last sequence says
	 * where the stream ended when we started. The consumer's own pending count is not
	 * enough: placed on a replica still catching up (after a node's restart), it counts
	 * only what that replica holds, down to nothing.
	 */
	if (si->Config->SubjectsLen == 1 && !strcmp(subject, si->Config->Subjects[0])) {
		end = si->State.LastSeq;
	} else {
		/* a narrower subject: where its last message is (none: nothing to wait for) */
		natsMsg *lastmsg = NULL;
		jsErrCode lerr = 0;

		if (js_GetLastMsg(&lastmsg, js, stream, subject, NULL, &lerr) == NATS_OK)
			end = natsMsg_GetSequence(lastmsg);
		natsMsg_Destroy(lastmsg);
	}
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = o->stream_seq ? o->stream_seq : 1;
	/* a cluster still electing or catching up answers late or not at all: wait a little */
	for (tries = 0;; tries++) {
		jerr = 0;
		s = js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr);
		if (s == NATS_OK)
			break;
		if (tries == LM_TAIL_SUB_TRIES - 1 || !lm_tail_transient(s, jerr)) {
			lm_tail_err("subscribe", s, jerr);
			err = -EIO;
			goto out;
		}
		if (!tries)
			lm_tail_err("subscribe (the cluster may be electing; trying again for 10 s)",
				    s, jerr);
		nats_Sleep(LM_TAIL_SUB_WAIT_MS);
	}
	if (!o->follow) {
		s = natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr);
		if (s != NATS_OK) {
			lm_tail_err("consumer info", s, jerr);
			err = -EIO;
			goto out;
		}
		/* delivery may have begun: nothing is left only if nothing was sent either */
		pending = ci->NumPending || ci->Delivered.Consumer || end >= so.Config.OptStartSeq;
	}
	while (o->follow || pending) {
		natsMsg *msg = NULL;
		jsMsgMetaData *meta = NULL;

		s = natsSubscription_NextMsg(&msg, sub, o->follow ? 60000 : LM_TAIL_WAIT_MS);
		if (s == NATS_TIMEOUT && o->follow)
			continue;
		if (s != NATS_OK) {
			fprintf(stderr, "lifemon: nats-tail: messages after stream seq %" PRIu64
				" did not come (the stream held %" PRIu64 "): %s\n", last, end,
				nats_GetLastError(NULL));
			err = -EIO;
			break;
		}
		if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
			if (!first)
				first = meta->Sequence.Stream;
			last = meta->Sequence.Stream;
			pending = meta->NumPending || last < end;
			jsMsgMetaData_Destroy(meta);
		}
		if (lm_tail_wanted(o, msg)) {
			fwrite(natsMsg_GetData(msg), 1, (size_t)natsMsg_GetDataLength(msg), stdout);
			fputc('\n', stdout);
			if (o->follow)
				fflush(stdout);
			printed++;
		}
		natsMsg_Destroy(msg);
	}
	fflush(stdout);
	fprintf(stderr, "nats-tail: %" PRIu64 " messages, stream seq %" PRIu64 "..%" PRIu64 "\n",
		printed, first, last);
out:
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	jsConsumerInfo_Destroy(ci);
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(no);
	free(subject);
	nats_CloseAndWait(1000);
	return err;
}
