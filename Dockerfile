# SecMLOps workers. One image serves both task queues; docker-compose.yml picks the queue per service.
FROM node:20-bookworm-slim
WORKDIR /app
# skip: the CPU build (onnxruntime-node's CPU library ships in the package). cuda12: GPU workers; the build then
# downloads the CUDA execution provider's binaries from NuGet, so it needs a network that reaches api.nuget.org.
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV NODE_ENV=production \
    SECMLOPS_HOME=/var/lib/secmlops \
    SECMLOPS_WORKFLOW_BUNDLE=/app/workflow-bundle.js
COPY package.json package-lock.json .npmrc ./
# better-sqlite3 (the console's and workers' once-store) is the one native module built here: its install script
# fetches a prebuilt binary, or compiles one where python3, make and g++ exist.
RUN npm ci --omit=dev --ignore-scripts \
 && npm rebuild better-sqlite3 \
 && if [ "$ONNXRUNTIME_NODE_INSTALL" != skip ]; then node node_modules/onnxruntime-node/script/install.js; fi
COPY bin ./bin
COPY policy ./policy
COPY client ./client
COPY workflows ./workflows
COPY activities ./activities
COPY engine ./engine
COPY worker ./worker
COPY github ./github
COPY console ./console
COPY cli ./cli
COPY tsconfig.json ./
# --build-arg WORKFLOW_TRACING=1 bundles the OpenTelemetry workflow interceptors, so workers with OTEL_* set trace
# workflows too (without it they trace activities only).
ARG WORKFLOW_TRACING=
RUN node bin/secmlops.js bundle-workflows /app/workflow-bundle.js ${WORKFLOW_TRACING:+--tracing}
USER node
ENTRYPOINT ["node", "bin/secmlops.js"]
CMD ["worker", "--queues", "cpu"]
