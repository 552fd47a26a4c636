"""LicenseNFT: minted by the marketplace only, O(1) access, ERC-4907 views, transfers, locks."""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak
from tests.utils.chain import DAY, MAX_UINT64, ZERO_ADDRESS, logs_of, only

RENTAL, PERPETUAL = 0, 1
MODEL = 1


@pytest.fixture(scope="session")
def minter(accounts):
    """A test account standing in for the escrow, to drive the licence contract directly."""
    return accounts[9]


@pytest.fixture(scope="session")
def licences(project, deployer, minter):
    """A LicenseNFT whose marketplace is `minter` (the core's is fixed to the escrow)."""
    return project.LicenseNFT.deploy(minter, sender=deployer)


def mint_rental(licences, minter, holder, duration=DAY, model=MODEL):
    return licences.mintOrExtendRental(holder, model, duration, sender=minter)


# ------------------------------------------------------------------ mint
def test_mint__perpetual__gives_access_forever(licences, minter, renter, chain):
    tx = licences.mintPerpetualLicence(renter, MODEL, sender=minter)

    log = only(tx, licences.LicenceMinted)
    assert log.licenceId == 1
    assert log.modelId == MODEL
    assert log.holder == renter.address
    assert log.kind == PERPETUAL
    assert log.expires == MAX_UINT64
    user = only(tx, licences.UpdateUser)
    assert (user.tokenId, user.user, user.expires) == (1, renter.address, MAX_UINT64)
    assert licences.ownerOf(1) == renter.address
    assert licences.licenceOf(1) == (MODEL, MAX_UINT64, PERPETUAL, 0)
    assert licences.perpetualCountOf(MODEL, renter) == 1
    chain.pending_timestamp += 10 * 365 * DAY
    chain.mine()
    assert licences.hasAccess(MODEL, renter)
    assert licences.userOf(1) == renter.address
    assert licences.userExpires(1) == MAX_UINT64


def test_mint_or_extend_rental__first__mints_a_rental_with_access_until_expiry(
    licences, minter, renter, chain
):
    tx = mint_rental(licences, minter, renter)

    log = only(tx, licences.LicenceMinted)
    expires = chain.blocks[tx.block_number].timestamp + DAY
    assert (log.licenceId, log.modelId, log.holder) == (1, MODEL, renter.address)
    assert (log.kind, log.expires) == (RENTAL, expires)
    assert licences.rentalOf(MODEL, renter) == 1
    assert licences.hasAccess(MODEL, renter)
    assert not licences.hasAccess(MODEL + 1, renter)
    chain.mine(timestamp=expires)
    assert not licences.hasAccess(MODEL, renter)
    assert licences.userOf(1) == ZERO_ADDRESS
    assert licences.userExpires(1) == expires


def test_mint__not_marketplace__reverts(licences, deployer):
    # Not even the deployer may mint: only the marketplace fixed at deployment.
    with ape.reverts(licences.NotMarketplace, caller=deployer.address):
        licences.mintPerpetualLicence(deployer, MODEL, sender=deployer)


def test_marketplace__is_fixed_at_deployment_and_has_no_admin(licences, minter):
    assert licences.marketplace() == minter.address
    # No role can hand the marketplace's powers to another account.
    for name in ("grantRole", "MINTER_ROLE", "DEFAULT_ADMIN_ROLE", "setMarketplace"):
        assert not hasattr(licences, name)


def test_constructor__zero_marketplace__reverts(project, accounts, deployer):
    # NOTE: from a fresh account. On anvil, ape decodes a reverted creation with the contract type
    # it cached for the would-be address, and the deployer's next address may have held another
    # contract in an earlier, rolled-back test (nonces are reused under isolation).
    sender = accounts.generate_test_account()
    deployer.transfer(sender, 10**18)

    with ape.reverts(project.LicenseNFT.ZeroMarketplace):
        project.LicenseNFT.deploy(ZERO_ADDRESS, sender=sender)


# ------------------------------------------------------------------ mintOrExtendRental
def test_mint_or_extend_rental__mints_then_extends_the_same_licence(licences, minter, renter):
    tx = mint_rental(licences, minter, renter)
    first = only(tx, licences.LicenceMinted)

    tx = mint_rental(licences, minter, renter, duration=2 * DAY)

    log = only(tx, licences.LicenceExtended)
    assert (log.licenceId, log.modelId, log.expires) == (1, MODEL, first.expires + 2 * DAY)
    user = only(tx, licences.UpdateUser)
    assert (user.tokenId, user.user, user.expires) == (1, renter.address, first.expires + 2 * DAY)
    assert licences.balanceOf(renter) == 1
    assert licences.licenceOf(1).expires == first.expires + 2 * DAY


def test_mint_or_extend_rental__after_lapse__extends_from_now(licences, minter, renter, chain):
    mint_rental(licences, minter, renter)
    chain.pending_timestamp += 5 * DAY

    tx = mint_rental(licences, minter, renter)

    now = chain.blocks[tx.block_number].timestamp
    assert only(tx, licences.LicenceExtended).expires == now + DAY
    assert licences.hasAccess(MODEL, renter)


def test_mint_or_extend_rental__not_marketplace__reverts(licences, renter):
    with ape.reverts(licences.NotMarketplace, caller=renter.address):
        licences.mintOrExtendRental(renter, MODEL, DAY, sender=renter)


# ------------------------------------------------------------------ plain transfers
def test_transfer__rental_moves_licence_and_access_to_the_receiver(licences, minter, renter, buyer):
    expires = only(mint_rental(licences, minter, renter), licences.LicenceMinted).expires

    tx = licences.transferFrom(renter, buyer, 1, sender=renter)

    user = only(tx, licences.UpdateUser)
    assert (user.tokenId, user.user, user.expires) == (1, buyer.address, expires)
    assert not licences.hasAccess(MODEL, renter)
    assert licences.rentalOf(MODEL, renter) == 0
    assert licences.hasAccess(MODEL, buyer)
    assert licences.rentalOf(MODEL, buyer) == 1
    assert licences.userOf(1) == buyer.address


def test_transfer__perpetual_moves_access(licences, minter, renter, buyer):
    licences.mintPerpetualLicence(renter, MODEL, sender=minter)
    licences.mintPerpetualLicence(renter, MODEL, sender=minter)

    licences.transferFrom(renter, buyer, 1, sender=renter)

    # The renter keeps access through its second perpetual licence.
    assert licences.perpetualCountOf(MODEL, renter) == 1
    assert licences.hasAccess(MODEL, renter)
    assert licences.perpetualCountOf(MODEL, buyer) == 1
    assert licences.hasAccess(MODEL, buyer)


def test_transfer__to_an_account_with_a_rental_of_the_model__reverts(
    licences, minter, renter, buyer
):
    mint_rental(licences, minter, renter)
    mint_rental(licences, minter, buyer)

    with ape.reverts(licences.RentalAlreadyHeld, modelId=MODEL, account=buyer.address, licenceId=2):
        licences.transferFrom(renter, buyer, 1, sender=renter)


def test_transfers_of__counts_each_change_of_holder_but_not_mints_or_extensions(
    licences, minter, renter, buyer
):
    mint_rental(licences, minter, renter)
    mint_rental(licences, minter, renter)  # extends licence 1
    assert licences.transfersOf(1) == 0

    licences.transferFrom(renter, buyer, 1, sender=renter)
    assert licences.transfersOf(1) == 1
    licences.safeTransferFrom(buyer, renter, 1, sender=buyer)
    assert licences.transfersOf(1) == 2
    licences.setLocked(1, True, sender=minter)
    with ape.reverts(licences.LicenceLocked, licenceId=1):
        licences.transferFrom(renter, buyer, 1, sender=renter)

    # Back with its first holder, but a different holding: the count does not go back.
    assert licences.ownerOf(1) == renter.address
    assert licences.transfersOf(1) == 2
    assert licences.licenceOf(1).transfers == 2
    assert licences.licenceOf(1).modelId == MODEL


def test_transfer__model_owner_cannot_take_or_burn_a_licence(
    licences, registry, minter, renter, creator
):
    # The model owner holds no power over licences: there is no burn, and transfers need the holder.
    mint_rental(licences, minter, renter)

    with ape.reverts(licences.ERC721InsufficientApproval, operator=creator.address, tokenId=1):
        licences.transferFrom(renter, creator, 1, sender=creator)
    assert not hasattr(licences, "burn")
    with ape.reverts(licences.NotMarketplace, caller=creator.address):
        licences.terminate(1, sender=creator)
    assert licences.hasAccess(MODEL, renter)


# ------------------------------------------------------------------ locks and termination
def test_set_locked__blocks_transfer_and_extension_until_unlocked(licences, minter, renter, buyer):
    mint_rental(licences, minter, renter)

    tx = licences.setLocked(1, True, sender=minter)

    log = only(tx, licences.LicenceLockSet)
    assert (log.licenceId, log.locked) == (1, True)
    assert licences.isLocked(1)
    assert licences.hasAccess(MODEL, renter)
    with ape.reverts(licences.LicenceLocked, licenceId=1):
        licences.transferFrom(renter, buyer, 1, sender=renter)
    with ape.reverts(licences.LicenceLocked, licenceId=1):
        mint_rental(licences, minter, renter)
    with ape.reverts(licences.LicenceLocked, licenceId=1):
        licences.setLocked(1, True, sender=minter)

    licences.setLocked(1, False, sender=minter)

    licences.transferFrom(renter, buyer, 1, sender=renter)
    assert licences.ownerOf(1) == buyer.address


def test_set_locked__perpetual_blocks_transfer(licences, minter, renter, buyer):
    licences.mintPerpetualLicence(renter, MODEL, sender=minter)
    licences.setLocked(1, True, sender=minter)

    with ape.reverts(licences.LicenceLocked, licenceId=1):
        licences.transferFrom(renter, buyer, 1, sender=renter)


def test_set_locked__unlock_when_not_locked__reverts(licences, minter, renter):
    mint_rental(licences, minter, renter)

    with ape.reverts(licences.LicenceNotLocked, licenceId=1):
        licences.setLocked(1, False, sender=minter)


def test_set_locked__not_marketplace__reverts(licences, minter, renter):
    mint_rental(licences, minter, renter)

    with ape.reverts(licences.NotMarketplace, caller=renter.address):
        licences.setLocked(1, True, sender=renter)


def test_terminate__burns_the_licence_and_its_access(licences, minter, renter):
    mint_rental(licences, minter, renter)
    licences.setLocked(1, True, sender=minter)

    tx = licences.terminate(1, sender=minter)

    log = only(tx, licences.LicenceTerminated)
    assert (log.licenceId, log.modelId) == (1, MODEL)
    assert logs_of(tx, licences.UpdateUser)[0].user == ZERO_ADDRESS
    assert not licences.hasAccess(MODEL, renter)
    assert licences.rentalOf(MODEL, renter) == 0
    assert licences.balanceOf(renter) == 0
    with ape.reverts(licences.UnknownLicence, licenceId=1):
        licences.licenceOf(1)
    # A new rental can be minted afterwards.
    mint_rental(licences, minter, renter)
    assert licences.rentalOf(MODEL, renter) == 2


def test_terminate__unknown_licence__reverts(licences, minter):
    with ape.reverts(licences.UnknownLicence, licenceId=4):
        licences.terminate(4, sender=minter)


def test_views__unknown_licence__revert(licences):
    views = (
        licences.licenceOf,
        licences.userOf,
        licences.userExpires,
        licences.isLocked,
        licences.transfersOf,
    )
    for view in views:
        with ape.reverts(licences.UnknownLicence, licenceId=1):
            view(1)


ERC165_ID = 0x01FFC9A7  # supportsInterface(bytes4)
ERC721_ID = 0x80AC58CD


def _interface_id(contract_type, *inherited: int) -> str:
    """ERC-165 id of an interface: the XOR of the selectors it declares itself.

    Its ABI also lists the functions of the interfaces it extends; XOR-ing their ids (`inherited`)
    takes those out again, as Solidity's `type(I).interfaceId` leaves them out.
    """
    interface_id = 0
    for abi in contract_type.abi:
        if abi.type == "function":
            interface_id ^= int.from_bytes(keccak(text=abi.selector)[:4], "big")
    for other in inherited:
        interface_id ^= other
    return f"0x{interface_id:08x}"


def test_supports_interface__erc721_and_own_interfaces(licences, project):
    assert licences.supportsInterface(f"0x{ERC721_ID:08x}")
    # ILicenseNFT extends IERC721 (and so IERC165).
    own = _interface_id(project.ILicenseNFT.contract_type, ERC721_ID, ERC165_ID)
    assert licences.supportsInterface(own)
    assert licences.supportsInterface(_interface_id(project.IERC4907.contract_type))
    assert not licences.supportsInterface("0x7965db0b")  # AccessControl: no roles any more
    assert not licences.supportsInterface("0xad092b5c")  # full ERC-4907 (no setUser)


# ------------------------------------------------------------------ ERC-721 bookkeeping
# LicenseNFT keeps the holder in the licence's record slot and the balances in its own mapping
# (its own `_ownerOf`, `balanceOf` and `_update`); these pin the ERC-721 behaviour it must keep.
def test_erc721__balances_owners_and_approvals_follow_mints_transfers_and_burns(
    licences, minter, renter, buyer, accounts
):
    spender = accounts[6]
    licences.mintPerpetualLicence(renter, MODEL, sender=minter)  # 1
    licences.mintPerpetualLicence(renter, MODEL, sender=minter)  # 2
    mint_rental(licences, minter, buyer, model=2)  # 3
    assert (licences.balanceOf(renter), licences.balanceOf(buyer)) == (2, 1)

    licences.approve(spender, 1, sender=renter)
    assert licences.getApproved(1) == spender.address
    tx = licences.transferFrom(renter, buyer, 1, sender=spender)

    transfer = only(tx, licences.Transfer)
    assert (transfer["from"], transfer.to, transfer.tokenId) == (renter.address, buyer.address, 1)
    assert logs_of(tx, licences.Approval) == []  # cleared without an event, as OpenZeppelin does
    assert licences.getApproved(1) == ZERO_ADDRESS
    assert licences.ownerOf(1) == buyer.address
    assert (licences.balanceOf(renter), licences.balanceOf(buyer)) == (1, 2)
    assert licences.licenceOf(1) == (MODEL, MAX_UINT64, PERPETUAL, 1)
    with ape.reverts(licences.ERC721InsufficientApproval, operator=spender.address, tokenId=1):
        licences.transferFrom(buyer, renter, 1, sender=spender)
    with ape.reverts(licences.ERC721InvalidReceiver, receiver=ZERO_ADDRESS):
        licences.transferFrom(buyer, ZERO_ADDRESS, 1, sender=buyer)

    tx = licences.terminate(2, sender=minter)

    burn = only(tx, licences.Transfer)
    assert (burn["from"], burn.to, burn.tokenId) == (renter.address, ZERO_ADDRESS, 2)
    assert licences.balanceOf(renter) == 0
    with ape.reverts(licences.ERC721NonexistentToken, tokenId=2):
        licences.ownerOf(2)
    with ape.reverts(licences.ERC721InvalidOwner, owner=ZERO_ADDRESS):
        licences.balanceOf(ZERO_ADDRESS)


def test_mint__model_id_above_uint48__reverts(licences, minter, renter):
    # The record keeps the model id in 48 bits; the registry numbers models from 1.
    with ape.reverts(licences.SafeCastOverflowedUintDowncast, bits=48, value=2**48):
        licences.mintPerpetualLicence(renter, 2**48, sender=minter)

    licences.mintPerpetualLicence(renter, 2**48 - 1, sender=minter)
    assert licences.licenceOf(1).modelId == 2**48 - 1
