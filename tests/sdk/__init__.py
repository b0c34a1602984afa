"""Tests that drive the real server with the official VMware SDK (vmware-sddc-manager)."""
