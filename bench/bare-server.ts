import Fastify from 'fastify';

// The baseline: a bare Fastify route that only parses the same JSON and answers 202.
const app = Fastify({ logger: false, bodyLimit: 1048576 });
app.post('/hooks/:sourceId', async (req, reply) =>
  reply.code(202).send({ ok: typeof req.body === 'object' }),
);
const url = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.stdout.write(`${JSON.stringify({ url })}\n`);
