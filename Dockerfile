# tidegate: multi-stage build on Debian 12 (bookworm), Node 20 — the platform the
# uWebSockets.js native addon is built for (Node ABI 115, glibc 2.36).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
# --ignore-scripts: `prepare` would build before the sources are copied
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
COPY test ./test
COPY native-bench ./native-bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/tidegate
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json ./
COPY config ./config
RUN mkdir -p /etc/tidegate && cp config/tidegate.example.yaml /etc/tidegate/tidegate.yaml \
    && ln -s /opt/tidegate/dist/src/cli.js /usr/local/bin/tidegate && chmod +x dist/src/cli.js
USER node
EXPOSE 8080 9901
# The admin API binds to 127.0.0.1 by default, which is where this check runs.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.TIDEGATE_ADMIN_PORT||9901)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["tidegate"]
CMD ["--config", "/etc/tidegate/tidegate.yaml"]
