# ModelGuard image: one image for the controller, the broker, injected proxies and their iptables
# init container. The CLI runs the TypeScript sources through tsx (a runtime dependency), so there is
# no build step: production dependencies and src/ are the image.
#   docker build -t modelguard:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/modelguard:0.1.0 --push .
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-slim
# iptables for the injected init container's traffic redirect (the proxy itself never needs it); iproute2
# (tc) for the broker's optional uplink shaping (Gateway.spec.trafficQoS, deploy/overlays/traffic-qos).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# Non-root by default; the manifests set the user per container (the init container runs as root
# with NET_ADMIN only, the injected proxy as 1337, which its redirect rules exempt).
USER 10001:10001
EXPOSE 8080 8081 8010 9090 9443
ENTRYPOINT ["node", "/app/bin/modelguard.js"]
CMD ["up"]
