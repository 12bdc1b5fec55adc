# autodqm: the engine, the scheduler and the dashboard (the demo runs all three in one process).
# Build: docker build -t autodqm .      Run the demo: docker run --rm autodqm demo
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# config/ and assets/ are not package data: the whole repository is copied and installed
# in place, so the default config_dir (/app/config/subsystems) is found.
COPY . /app
RUN pip install -e . && useradd --create-home autodqm && mkdir -p /app/var && chown autodqm /app/var
USER autodqm

ENTRYPOINT ["autodqm"]
CMD ["demo"]
