# hookrelay: one image for every role (ingress, worker, admin, start); the role is the command.
#
#   docker build -t hookrelay .
#   docker run --rm hookrelay --help

# ---- build: compile TypeScript, then drop dev dependencies ---------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
ENV CI=true

# Dependencies first, so editing sources does not re-download them. --ignore-scripts: the
# package's own "prepare" (tsc) would run here, before the sources are copied in; the build runs
# explicitly below. No runtime dependency needs an install script (msgpackr-extract ships
# prebuilt binaries and msgpackr falls back to plain JS without them).
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
COPY bin ./bin
COPY config ./config
COPY console ./console
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime: production dependencies, compiled code, nothing else -------------------------------
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app

# Owned by root and only readable by the process: the service cannot rewrite its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/config ./config
# The console's templates and stylesheet (read at start, beside dist/).
COPY --from=build /app/console ./console

# The "node" user (uid 1000) comes with the base image.
USER node

# 8080: ingress (webhooks, /readyz). 8081: admin API, console and /metrics. Workers listen on none.
EXPOSE 8080 8081

# No HEALTHCHECK here: the roles differ (workers have no HTTP port). docker-compose.yml checks the
# ingress with Node's built-in fetch, as the slim image has no curl.
ENTRYPOINT ["node", "bin/hookrelay.js"]
CMD ["start", "--config", "/etc/hookrelay/hookrelay.yaml"]
