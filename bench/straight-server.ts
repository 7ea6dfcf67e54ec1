import { createHmac, timingSafeEqual } from 'node:crypto';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

// The reference point: HMAC over the raw bytes, JSON.parse, one BullMQ Queue.add per request.
const secret = process.env.SECRET ?? 'bench-secret';
if (!process.env.REDIS_URL) throw new Error('REDIS_URL is required');
const queue = new Queue('straight', {
  // biome-ignore lint/suspicious/noExplicitAny: BullMQ types ioredis from its own copy
  connection: new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null }) as any,
});
const app = Fastify({ logger: false, bodyLimit: 1048576 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, b, done) => done(null, b));
app.post('/hooks/:sourceId', async (req, reply) => {
  const body = req.body as Buffer;
  const want = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const got = Buffer.from(String(req.headers['x-hub-signature'] ?? ''));
  if (got.length !== want.length || !timingSafeEqual(got, want)) return reply.code(401).send({});
  const payload = JSON.parse(body.toString('utf8'));
  const job = await queue.add(String(req.headers['x-event-key']), {
    body: body.toString('utf8'),
    repo: payload.repository?.full_name,
  });
  return reply.code(202).send({ id: job.id });
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ url })}\n`);
