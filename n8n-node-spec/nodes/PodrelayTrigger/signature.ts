import { createHmac, timingSafeEqual } from 'crypto';

/** Seconds a delivery's timestamp may differ from now (Standard Webhooks' default). */
export const TOLERANCE_SECONDS = 5 * 60;

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
	const value = headers[name] ?? headers[name.toLowerCase()];
	return Array.isArray(value) ? value[0] : (value ?? '');
}

/**
 * Whether a delivery is signed with `secret` per the Standard Webhooks spec: HMAC-SHA256 of
 * `{webhook-id}.{webhook-timestamp}.{body}`, any of the space-separated `v1,` signatures,
 * and a timestamp within the tolerance.
 */
export function verifyDelivery(
	secret: string,
	body: Buffer | string,
	headers: Record<string, string | string[] | undefined>,
	now: number = Date.now() / 1000,
): boolean {
	const id = header(headers, 'webhook-id');
	const timestamp = header(headers, 'webhook-timestamp');
	const signatures = header(headers, 'webhook-signature');
	if (!id || !/^\d+$/.test(timestamp) || !signatures || !secret.startsWith('whsec_')) return false;
	if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) return false;
	const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
	const payload = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
	const expected = createHmac('sha256', key).update(payload).digest();
	return signatures.split(' ').some((signature) => {
		const [version, value] = signature.split(',', 2);
		if (version !== 'v1' || !value) return false;
		const given = Buffer.from(value, 'base64');
		return given.length === expected.length && timingSafeEqual(given, expected);
	});
}
