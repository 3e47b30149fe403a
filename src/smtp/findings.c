/* findings.c - names of the client deviations a session notes (smtpd_finding). */
#include <smtpd.h>

SMTPD_API const char *
smtpd_finding_name(unsigned finding)
{
    switch ((smtpd_finding)finding) {
    case SMTPD_FINDING_BARE_LF:
        return "bare-lf";
    case SMTPD_FINDING_BARE_CR:
        return "bare-cr";
    case SMTPD_FINDING_EARLY_TALKER:
        return "early-talker";
    case SMTPD_FINDING_BAD_PIPELINING:
        return "bad-pipelining";
    case SMTPD_FINDING_LONG_LINE:
        return "long-line";
    case SMTPD_FINDING_8BIT_UNDECLARED:
        return "8bit-undeclared";
    case SMTPD_FINDING_NO_DATE:
        return "no-date";
    case SMTPD_FINDING_NO_MESSAGE_ID:
        return "no-message-id";
    case SMTPD_FINDING_HELO_NOT_DOMAIN:
        return "helo-not-domain";
    case SMTPD_FINDING_SPACE_IN_PATH:
        return "space-in-path";
    case SMTPD_FINDING_NO_ANGLE_BRACKETS:
        return "no-angle-brackets";
    case SMTPD_FINDING_HELO_NOT_EHLO:
        return "helo-not-ehlo";
    case SMTPD_FINDING_NO_QUIT:
        return "no-quit";
    }
    return 0;
}
