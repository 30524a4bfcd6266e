import os from 'node:os';
import nodemailer from 'nodemailer';
import type { Report } from './model.js';
import { renderHtml, renderText } from './render.js';

/**
 * Send the report through SMTP (`smtp://user:pass@host:port`, `smtps://...`): HTML and plain text bodies,
 * subject starting with the overall status. Throws the transport's error (EAUTH, ESOCKET, ...).
 */
export async function sendReport(r: Report, to: string, smtpUrl: string): Promise<void> {
  const transport = nodemailer.createTransport(smtpUrl);
  try {
    await transport.sendMail({
      from: `replica-monitor <replica-monitor@${os.hostname()}>`,
      to,
      subject: `${r.status}: replica backup report, ${r.hosts.length} hosts (${r.hosts.filter((h) => h.status !== 'OK').length} need attention)`,
      text: renderText(r),
      html: renderHtml(r),
    });
  } finally {
    transport.close();
  }
}
