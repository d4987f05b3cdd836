"""Uploads FILE to BLOB_URL with the Azure Storage SDK for Python, in blocks of BLOCK bytes (Put
Block + Put Block List, the way the DataPackageHandler sample and other SDK clients upload
packages), then prints `uploaded=<bytes>`. Run by package_api.rs.

Usage: python package_upload.py BLOB_URL FILE BLOCK
"""

import os
import sys

from azure.storage.blob import BlobClient


def main():
    url, path, block = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = BlobClient.from_blob_url(url, max_single_put_size=block, max_block_size=block)
    with open(path, "rb") as data:
        client.upload_blob(data, overwrite=True)
    print(f"uploaded={os.path.getsize(path)}")


if __name__ == "__main__":
    main()
