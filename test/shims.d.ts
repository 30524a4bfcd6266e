declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown;
}
declare module 'smtp-server' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const SMTPServer: any;
}
declare module 'mailparser' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export function simpleParser(src: any): Promise<any>;
}
