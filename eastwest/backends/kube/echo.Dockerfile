# The echo server every backend runs (eastwest/apps/echo.py: standard library only), as an image.
# Build context: made by eastwest/backends/kube/images.py (this file and eastwest/apps/), sent on stdin.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY eastwest/apps/__init__.py eastwest/apps/echo.py eastwest/apps/
# any UID but 1337: Istio's iptables never redirect the traffic of UID 1337 (the proxy's own)
USER 10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "eastwest.apps.echo"]
