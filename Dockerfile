FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 kerberosbot
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN pip install --no-cache-dir .
USER kerberosbot
EXPOSE 3000
ENTRYPOINT ["kerberos-bot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
