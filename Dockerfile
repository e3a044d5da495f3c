# syntax=docker/dockerfile:1
#
# One image for every role of the CTEM platform: `ctem api`, `ctem worker` or `ctem start`.
# There is no build step: the CLI runs the TypeScript sources through tsx (bin/ctem.js).
#
# In containers DATABASE_URL and TEMPORAL_ADDRESS are always set (see docker-compose.yml), so the
# image carries neither the Temporal CLI nor a use for the embedded PostgreSQL.

# --- dependencies --------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Fixes to dependencies not yet released upstream (patch-package applies them after install).
COPY patches ./patches
# Production dependencies only, exactly as the lockfile pins them (tsx among them: bin/ctem.js runs
# the TypeScript sources through it).
RUN npm ci --omit=dev --no-audit --no-fund \
 && node -e "require.resolve('tsx/package.json')" \
 && npm cache clean --force

# --- runtime -------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    CTEM_DATA_DIR=/var/lib/ctem
WORKDIR /app

COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY cli ./cli
COPY platform ./platform
COPY access ./access
COPY api ./api
COPY console ./console
COPY metrics ./metrics
COPY db ./db
COPY workflows ./workflows
COPY activities ./activities
COPY config ./config
COPY scoping ./scoping
COPY discovery ./discovery
COPY prioritization ./prioritization
COPY validation ./validation
COPY mobilization ./mobilization
COPY slack ./slack
COPY scripts ./scripts

# The sources stay root-owned (read-only for the process); only the data directory is writable.
# A named volume mounted here starts out with this ownership.
RUN mkdir -p /var/lib/ctem \
 && chown node:node /var/lib/ctem

USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/ctem.js"]
CMD ["start"]
