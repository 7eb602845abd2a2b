# CPU image of the app on the embedded default: `docker build -t gradlens . && docker run -p 8501:8501 gradlens`
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
# torch's CPU wheel first, so that `torch==2.13.0` in requirements.txt is already satisfied
# (a plain PyPI resolve would pull the multi-GB CUDA build); then exactly the README's install.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE 8501
# Inside a container the server must listen beyond loopback for the port mapping to reach it.
CMD ["python", "-m", "gradlens", "app", "--address", "0.0.0.0", "--port", "8501"]
