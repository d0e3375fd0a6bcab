# SecMLOps workers. One image serves both task queues; docker-compose.yml picks the queue per service.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    SECMLOPS_HOME=/var/lib/secmlops \
    SECMLOPS_WORKFLOW_BUNDLE=/app/workflow-bundle.js
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY bin ./bin
COPY policy ./policy
COPY workflows ./workflows
COPY activities ./activities
COPY engine ./engine
COPY worker ./worker
COPY github ./github
COPY console ./console
COPY cli ./cli
COPY tsconfig.json ./
RUN node bin/secmlops.js bundle-workflows /app/workflow-bundle.js
USER node
ENTRYPOINT ["node", "bin/secmlops.js"]
CMD ["worker", "--queues", "cpu"]
